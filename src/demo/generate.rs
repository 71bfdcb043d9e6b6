//! Realistic demo batches: what a Dinas Sosial's recipient list looks like, including the
//! records whose administrative data would block account opening.
//!
//! A batch is deterministic for its seed. Complete records are valid by every domain rule and
//! carry distinct NIKs; exactly `incomplete` records carry one problem (about one in ten carries
//! two), spread the way real office lists fail: a missing mother's maiden name most often, then
//! NIKs that do not parse or disagree with the birth date, missing family-card numbers, … The
//! batch says which reasons account opening must find ([`DemoBatch::expected_reasons`]).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::ReasonCode;
use crate::intake::RawRecord;

/// A generated batch and the reasons validation must find in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoBatch {
    /// Recipients in file order; `row` is 1-based.
    pub records: Vec<RawRecord>,
    /// How many records carry each reason (a record with two problems counts under both).
    pub expected_reasons: BTreeMap<ReasonCode, u32>,
    /// The complete version of each incomplete record, by row: what the office finds in its
    /// own files when it fixes the record.
    pub corrected: BTreeMap<u32, RawRecord>,
}

/// Generates `recipients` records of which exactly `incomplete` (clamped to `recipients`) have
/// incomplete or invalid administrative data. When `incomplete >= 15` every problem kind of
/// [`PROBLEMS`] occurs at least once. Linear in `recipients`: a million records take seconds.
pub fn generate(recipients: u32, incomplete: u32, seed: u64) -> DemoBatch {
    let incomplete = incomplete.min(recipients);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut serials = SerialCounter::default();
    let mut records = Vec::with_capacity(recipients as usize);
    let mut expected_reasons = BTreeMap::new();
    let mut corrected = BTreeMap::new();

    // Problems for the incomplete records: every kind once, then by weight; shuffled so the
    // guaranteed ones are not all at the top of the file.
    let mut problems: Vec<Vec<ReasonCode>> = (0..incomplete as usize)
        .map(|i| {
            let first = PROBLEMS
                .get(i)
                .map_or_else(|| pick_problem(&mut rng), |p| p.code);
            let mut codes = vec![first];
            if rng.random_bool(0.1) {
                // A second problem that does not hide or overlap the first.
                loop {
                    let second = pick_problem(&mut rng);
                    if group(second) != group(first) {
                        codes.push(second);
                        break;
                    }
                }
            }
            codes
        })
        .collect();
    shuffle(&mut problems, &mut rng);
    let mut problems = problems.into_iter();

    // Selection sampling (Knuth's algorithm S): exactly `incomplete` of `recipients` rows,
    // uniformly spread, in one pass.
    let mut still_needed = u64::from(incomplete);
    for i in 0..recipients {
        let remaining = u64::from(recipients - i);
        let person = Person::generate(&mut rng, &mut serials);
        let mut record = person.render(&mut rng, i + 1);
        if still_needed > 0 && rng.random_range(0..remaining) < still_needed {
            still_needed -= 1;
            corrected.insert(record.row, record.clone());
            let codes = problems
                .next()
                .expect("one problem list per incomplete record");
            for code in codes {
                spoil(&mut record, &person, code, &mut rng);
                *expected_reasons.entry(code).or_insert(0) += 1;
            }
        }
        records.push(record);
    }
    DemoBatch {
        records,
        expected_reasons,
        corrected,
    }
}

/// `recipients` complete, valid records with distinct NIKs, produced one at a time: the records
/// of `generate(recipients, 0, seed)` without holding them all (benchmarks write millions).
pub fn valid_records(recipients: u32, seed: u64) -> impl Iterator<Item = RawRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut serials = SerialCounter::default();
    (0..recipients).map(move |i| Person::generate(&mut rng, &mut serials).render(&mut rng, i + 1))
}

/// The header of [`write_csv`]'s files: the Indonesian column names, in order.
pub const CSV_HEADER: [&str; 13] = [
    "nik",
    "no_kk",
    "nama",
    "nama_ibu_kandung",
    "tempat_lahir",
    "tanggal_lahir",
    "jenis_kelamin",
    "alamat",
    "kode_wilayah",
    "no_hp",
    "kode_bank",
    "no_rekening",
    "nominal",
];

/// One record's cells under [`CSV_HEADER`] (empty for a missing value).
pub fn csv_cells(r: &RawRecord) -> [&str; 13] {
    r.values().map(|c| c.as_deref().unwrap_or(""))
}

/// Writes records as an office's CSV export, with the Indonesian header names. `row` is not
/// written (it is the position in the file).
pub fn write_csv<W: Write>(records: &[RawRecord], writer: W) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(CSV_HEADER)?;
    for r in records {
        csv.write_record(csv_cells(r))?;
    }
    csv.flush()
}

/// A corrections file for `records` (as spoiled) from their complete versions: a `row` column
/// and one column per field, filled only where the value must change.
pub fn write_corrections<W: Write>(
    records: &[RawRecord],
    corrected: &BTreeMap<u32, RawRecord>,
    writer: W,
) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(writer);
    let mut header = vec!["row".to_owned()];
    header.extend(crate::intake::file::field_keys().map(str::to_owned));
    csv.write_record(&header)?;
    for r in records {
        let Some(good) = corrected.get(&r.row) else {
            continue;
        };
        let mut cells = vec![r.row.to_string()];
        for (now, want) in r.values().into_iter().zip(good.values()) {
            cells.push(if now == want {
                String::new()
            } else {
                want.clone().unwrap_or_default()
            });
        }
        csv.write_record(&cells)?;
    }
    csv.flush()
}

/// A problem kind and how often a real office list shows it (relative weight).
pub struct Problem {
    pub code: ReasonCode,
    pub weight: u32,
}

/// The problems the generator produces, most frequent first.
pub const PROBLEMS: [Problem; 15] = [
    Problem {
        code: ReasonCode::MotherNameMissing,
        weight: 30,
    },
    Problem {
        code: ReasonCode::NikInvalid,
        weight: 12,
    },
    Problem {
        code: ReasonCode::NikBirthDateMismatch,
        weight: 10,
    },
    Problem {
        code: ReasonCode::KkMissing,
        weight: 8,
    },
    Problem {
        code: ReasonCode::NikMissing,
        weight: 5,
    },
    Problem {
        code: ReasonCode::KkInvalid,
        weight: 5,
    },
    Problem {
        code: ReasonCode::BirthDateMissing,
        weight: 5,
    },
    Problem {
        code: ReasonCode::NikSexMismatch,
        weight: 4,
    },
    Problem {
        code: ReasonCode::AddressMissing,
        weight: 4,
    },
    Problem {
        code: ReasonCode::BirthPlaceMissing,
        weight: 4,
    },
    Problem {
        code: ReasonCode::RegionCodeInvalid,
        weight: 4,
    },
    Problem {
        code: ReasonCode::BankUnknown,
        weight: 3,
    },
    Problem {
        code: ReasonCode::SexMissing,
        weight: 2,
    },
    Problem {
        code: ReasonCode::NameMissing,
        weight: 2,
    },
    Problem {
        code: ReasonCode::AmountInvalid,
        weight: 2,
    },
];

fn pick_problem(rng: &mut StdRng) -> ReasonCode {
    let total: u32 = PROBLEMS.iter().map(|p| p.weight).sum();
    let mut x = rng.random_range(0..total);
    for p in &PROBLEMS {
        if x < p.weight {
            return p.code;
        }
        x -= p.weight;
    }
    unreachable!("x < total")
}

/// Problems in the same group interfere (a missing NIK hides a birth-date mismatch; a missing
/// birth date cannot disagree with the NIK), so a record never carries two of one group.
fn group(code: ReasonCode) -> u8 {
    use ReasonCode::*;
    match code {
        NikMissing | NikInvalid | NikBirthDateMismatch | NikSexMismatch | BirthDateMissing
        | SexMissing => 1,
        KkMissing | KkInvalid => 2,
        other => 10 + other as u8,
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut StdRng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// The next free NIK serial per (region, birth date, sex), as the civil registry assigns them:
/// distinct NIKs without remembering the NIKs.
#[derive(Default)]
struct SerialCounter(HashMap<u64, u16>);

impl SerialCounter {
    /// `None` once all 9999 serials of the key are taken.
    fn next(&mut self, key: u64) -> Option<u16> {
        let n = self.0.entry(key).or_insert(0);
        (*n < 9999).then(|| {
            *n += 1;
            *n
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    fn random(rng: &mut StdRng, years: std::ops::RangeInclusive<u16>) -> Date {
        let year = rng.random_range(years);
        let month = rng.random_range(1..=12);
        let day = rng.random_range(1..=days_in_month(year, month));
        Date { year, month, day }
    }

    fn render(self, rng: &mut StdRng) -> String {
        let Date { year, month, day } = self;
        match rng.random_range(0..10) {
            0..4 => format!("{year:04}-{month:02}-{day:02}"),
            4..7 => format!("{day:02}-{month:02}-{year:04}"),
            _ => format!("{day:02}/{month:02}/{year:04}"),
        }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// A regency or city (Kemendagri code) and what its people's records look like.
struct Regency {
    /// `PPKK`, e.g. `5301`.
    code: &'static str,
    /// Kota (villages are kelurahan, `1xxx`) or kabupaten (desa, `2xxx`).
    city: bool,
    districts: u8,
    /// Relative weight in a batch.
    weight: u32,
    birth_places: &'static [&'static str],
    streets: &'static [&'static str],
    /// Family or clan names common there; empty strings give single- or given-name-only people.
    family_names: &'static [&'static str],
}

const REGENCIES: &[Regency] = &[
    Regency {
        code: "5301",
        city: false,
        districts: 24,
        weight: 20,
        birth_places: &[
            "Kupang",
            "Oelamasi",
            "Soe",
            "Atambua",
            "Kefamenanu",
            "Rote",
            "Sabu",
        ],
        streets: &[
            "Jl. Timor Raya",
            "Jl. Oelnasi",
            "Jl. Lintas Timor",
            "Jl. Baumata",
        ],
        family_names: &[
            "Ndun",
            "Bria",
            "Manafe",
            "Tefa",
            "Nenobais",
            "Fanggidae",
            "Ratu",
            "Lenggu",
            "Messakh",
            "Bessie",
            "Nubatonis",
            "Taneo",
            "Sabuna",
            "",
        ],
    },
    Regency {
        code: "5371",
        city: true,
        districts: 6,
        weight: 15,
        birth_places: &[
            "Kupang",
            "Kupang",
            "Ende",
            "Maumere",
            "Waingapu",
            "Larantuka",
        ],
        streets: &[
            "Jl. El Tari",
            "Jl. Frans Seda",
            "Jl. W. J. Lalamentik",
            "Jl. Cak Doko",
        ],
        family_names: &[
            "Fanggidae",
            "Pellokila",
            "Manafe",
            "Lay",
            "Radja",
            "Adoe",
            "Mbura",
            "Koreh",
            "",
        ],
    },
    Regency {
        code: "3578",
        city: true,
        districts: 31,
        weight: 20,
        birth_places: &[
            "Surabaya", "Surabaya", "Sidoarjo", "Gresik", "Lamongan", "Madura",
        ],
        streets: &[
            "Jl. Pahlawan",
            "Jl. Kapas Krampung",
            "Jl. Demak",
            "Jl. Ngagel Jaya",
        ],
        family_names: &[
            "Santoso", "Susanto", "Wibowo", "Prasetyo", "Hartono", "", "", "",
        ],
    },
    Regency {
        code: "3273",
        city: true,
        districts: 30,
        weight: 15,
        birth_places: &[
            "Bandung",
            "Bandung",
            "Garut",
            "Cimahi",
            "Sumedang",
            "Tasikmalaya",
        ],
        streets: &["Jl. Merdeka", "Jl. Dago", "Jl. Cibaduyut", "Gg. Sukaluyu"],
        family_names: &[
            "Permana", "Suryana", "Hidayat", "Ruhiyat", "Gunawan", "", "",
        ],
    },
    Regency {
        code: "3171",
        city: true,
        districts: 8,
        weight: 10,
        birth_places: &[
            "Jakarta", "Jakarta", "Bogor", "Tegal", "Cirebon", "Padang", "Medan",
        ],
        streets: &[
            "Jl. Kramat Raya",
            "Jl. Tanah Abang II",
            "Jl. Senen Raya",
            "Gg. Kenari",
        ],
        family_names: &[
            "Siregar",
            "Simanjuntak",
            "Nasution",
            "Lubis",
            "Saputra",
            "",
            "",
        ],
    },
    Regency {
        code: "7371",
        city: true,
        districts: 15,
        weight: 12,
        birth_places: &["Makassar", "Makassar", "Gowa", "Maros", "Bone", "Pare-Pare"],
        streets: &[
            "Jl. Urip Sumoharjo",
            "Jl. Perintis Kemerdekaan",
            "Jl. Veteran Selatan",
        ],
        family_names: &[
            "Daeng Ngalle",
            "Daeng Sikki",
            "Rahman",
            "Syamsuddin",
            "Mappa",
            "",
        ],
    },
    Regency {
        code: "9471",
        city: true,
        districts: 5,
        weight: 8,
        birth_places: &[
            "Jayapura", "Jayapura", "Sentani", "Wamena", "Biak", "Merauke",
        ],
        streets: &[
            "Jl. Ahmad Yani",
            "Jl. Raya Abepura",
            "Jl. Sam Ratulangi",
            "Jl. Pasifik Permai",
        ],
        family_names: &[
            "Rumbiak", "Wenda", "Kogoya", "Yoku", "Wanggai", "Mandacan", "Ohee",
        ],
    },
];

const MALE_NAMES: &[&str] = &[
    "Agus",
    "Budi",
    "Dedi",
    "Eko",
    "Hendra",
    "Joko",
    "Yohanes",
    "Petrus",
    "Markus",
    "Fransiskus",
    "Muhammad",
    "Ahmad",
    "Rizky",
    "Andi",
    "Slamet",
    "Bambang",
    "Rudi",
    "Yosef",
    "Daniel",
    "Imanuel",
    "Hasan",
    "Abdul",
    "Rahmat",
    "Arif",
    "Fajar",
    "Dimas",
    "Bayu",
    "Teguh",
    "Yakobus",
    "Sutrisno",
    "Paulus",
    "Stefanus",
    "Ilham",
    "Wahyu",
    "Kurniawan",
    "Setiawan",
    "Nugroho",
];

const FEMALE_NAMES: &[&str] = &[
    "Siti",
    "Dewi",
    "Sri",
    "Nur",
    "Ani",
    "Maria",
    "Yuliana",
    "Fransiska",
    "Agustina",
    "Kristina",
    "Ratna",
    "Wulan",
    "Putri",
    "Fitri",
    "Rina",
    "Yohana",
    "Marta",
    "Sarah",
    "Aisyah",
    "Indah",
    "Lestari",
    "Endang",
    "Sumiati",
    "Rosalina",
    "Theresia",
    "Magdalena",
    "Ayu",
    "Kartini",
    "Rahayu",
    "Wahyuni",
    "Aminah",
    "Fatimah",
    "Susanti",
    "Yuliani",
    "Mariana",
    "Elisabeth",
];

/// A recipient before rendering: the facts a complete record is built from.
struct Person {
    regency: &'static Regency,
    district: u8,
    village: u16,
    female: bool,
    birth: Date,
    serial: u16,
}

impl Person {
    fn generate(rng: &mut StdRng, serials: &mut SerialCounter) -> Person {
        let total: u32 = REGENCIES.iter().map(|r| r.weight).sum();
        let mut x = rng.random_range(0..total);
        let regency = REGENCIES
            .iter()
            .find(|r| {
                let hit = x < r.weight;
                x = x.saturating_sub(r.weight);
                hit
            })
            .expect("x < total");
        let district = rng.random_range(1..=regency.districts);
        let village = if regency.city { 1001 } else { 2001 } + rng.random_range(0..12);
        let female = rng.random_bool(0.55);
        loop {
            let birth = Date::random(rng, 1940..=2004);
            let region: u64 =
                regency.code.parse::<u64>().expect("digits") * 100 + u64::from(district);
            let nik_day = u64::from(birth.day) + if female { 40 } else { 0 };
            let key = ((region * 100 + nik_day) * 100 + u64::from(birth.month)) * 10_000
                + u64::from(birth.year);
            if let Some(serial) = serials.next(key) {
                return Person {
                    regency,
                    district,
                    village,
                    female,
                    birth,
                    serial,
                };
            }
        }
    }

    /// `PPKKCC`.
    fn region6(&self) -> String {
        format!("{}{:02}", self.regency.code, self.district)
    }

    fn nik(&self) -> String {
        let Date { year, month, day } = self.birth;
        let day = day + if self.female { 40 } else { 0 };
        format!(
            "{}{day:02}{month:02}{:02}{:04}",
            self.region6(),
            year % 100,
            self.serial
        )
    }

    fn render(&self, rng: &mut StdRng, row: u32) -> RawRecord {
        let regency = self.regency;
        let nik = self.nik();
        let nik = if rng.random_bool(0.02) {
            // Typed in groups of four, as printed on some forms.
            format!(
                "{} {} {} {}",
                &nik[0..4],
                &nik[4..8],
                &nik[8..12],
                &nik[12..16]
            )
        } else {
            nik
        };
        let issued = Date::random(rng, 2005..=2023);
        let kk = format!(
            "{}{:02}{:02}{:02}{:04}",
            self.region6(),
            issued.day,
            issued.month,
            issued.year % 100,
            rng.random_range(1..=9999)
        );
        let region_code = if rng.random_bool(0.8) {
            format!(
                "{}.{}.{:02}.{}",
                &regency.code[..2],
                &regency.code[2..],
                self.district,
                self.village
            )
        } else {
            format!("{}{}", self.region6(), self.village)
        };
        let sex = match (self.female, rng.random_bool(0.1)) {
            (false, false) => "L",
            (true, false) => "P",
            (false, true) => "M",
            (true, true) => "F",
        };
        let address = if rng.random_bool(0.15) && !regency.city {
            format!(
                "Dusun {}, RT {:03}/RW {:03}",
                rng.random_range(1..=6),
                rng.random_range(1..=20),
                rng.random_range(1..=10)
            )
        } else {
            format!(
                "{} No. {}, RT {:03}/RW {:03}",
                pick(rng, regency.streets),
                rng.random_range(1..=180),
                rng.random_range(1..=20),
                rng.random_range(1..=12)
            )
        };
        let phone = rng.random_bool(0.8).then(|| {
            let operator = pick(
                rng,
                &[
                    "11", "12", "13", "21", "22", "52", "53", "77", "78", "81", "95",
                ],
            );
            let digits = rng.random_range(7..=8);
            let mut phone = format!("08{operator}");
            for _ in 0..digits {
                phone.push(char::from(b'0' + rng.random_range(0..10u8)));
            }
            phone
        });
        let (bank_code, account_len) = match rng.random_range(0..100) {
            0..65 => ("002", 15),
            65..75 => ("009", 10),
            75..85 => ("008", 13),
            85..95 => ("451", 10),
            _ => ("200", 12),
        };
        let account_number = rng.random_bool(0.1).then(|| {
            let mut account = String::with_capacity(account_len);
            account.push(char::from(b'1' + rng.random_range(0..9u8)));
            for _ in 1..account_len {
                account.push(char::from(b'0' + rng.random_range(0..10u8)));
            }
            account
        });
        let amount = match rng.random_range(0..100) {
            0..40 => "600000",
            40..55 => "600000.00",
            55..75 => "600.000",
            75..90 => "Rp600.000",
            _ => "Rp 600.000,00",
        };
        let birth_place = if rng.random_bool(0.7) {
            regency.birth_places[0]
        } else {
            pick(rng, regency.birth_places)
        };
        RawRecord {
            row,
            nik: Some(nik),
            kk: Some(kk),
            name: Some(self.name(rng)),
            mother_name: Some(mother_name(rng, regency)),
            birth_place: Some(birth_place.to_owned()),
            birth_date: Some(self.birth.render(rng)),
            sex: Some(sex.to_owned()),
            address: Some(address),
            region_code: Some(region_code),
            phone,
            bank_code: Some(bank_code.to_owned()),
            account_number,
            amount: Some(amount.to_owned()),
        }
    }

    /// One to four given names and maybe a family name; one in ten longer than 30 characters,
    /// which a bank truncates on the account.
    fn name(&self, rng: &mut StdRng) -> String {
        let given = if self.female {
            FEMALE_NAMES
        } else {
            MALE_NAMES
        };
        let long = rng.random_bool(0.1);
        let mut name = pick(rng, given).to_owned();
        let parts = if long { 6 } else { rng.random_range(0..3) };
        for _ in 0..parts {
            if long && name.len() > 30 {
                break;
            }
            let next = pick(rng, given);
            if !name.contains(next) {
                name.push(' ');
                name.push_str(next);
            }
        }
        let family = pick(rng, self.regency.family_names);
        if !family.is_empty() && (long || rng.random_bool(0.7)) {
            name.push(' ');
            name.push_str(family);
        }
        if long {
            let suffix = if self.female { " Putri" } else { " Putra" };
            while name.len() <= 30 {
                name.push_str(suffix);
            }
        }
        name
    }
}

/// A mother's maiden name: one or two given names, sometimes a family name.
fn mother_name(rng: &mut StdRng, regency: &Regency) -> String {
    let mut name = pick(rng, FEMALE_NAMES).to_owned();
    if rng.random_bool(0.5) {
        let second = pick(rng, FEMALE_NAMES);
        if second != name {
            name.push(' ');
            name.push_str(second);
        }
    }
    let family = pick(rng, regency.family_names);
    if !family.is_empty() && rng.random_bool(0.5) {
        name.push(' ');
        name.push_str(family);
    }
    name
}

/// Damages one field of a complete record the way `code` describes.
fn spoil(record: &mut RawRecord, person: &Person, code: ReasonCode, rng: &mut StdRng) {
    use ReasonCode::*;
    match code {
        NikMissing => record.nik = None,
        NikInvalid => {
            let nik = person.nik();
            record.nik = Some(match rng.random_range(0..6) {
                // A digit lost.
                0 => nik[..15].to_owned(),
                // A digit too many.
                1 => format!("{nik}{}", rng.random_range(0..10)),
                // A province that does not exist.
                2 => format!("{}{}", pick(rng, &["10", "00", "20", "40"]), &nik[2..]),
                // Day 32: neither a man's (1–31) nor a woman's (41–71) birth day.
                3 => format!("{}32{}", &nik[..6], &nik[8..]),
                // Serial 0000.
                4 => format!("{}0000", &nik[..12]),
                // Excel turned it into a number in scientific notation.
                _ => format!("{}.{}E+15", &nik[..1], &nik[1..6]),
            });
        }
        NikBirthDateMismatch => {
            let Date { year, month, day } = person.birth;
            let wrong = match rng.random_range(0..3) {
                // Day and month swapped.
                0 if day <= 12 && day != month => Date {
                    year,
                    month: day,
                    day: month,
                },
                // A neighbouring day.
                1 => Date {
                    day: if day > 1 { day - 1 } else { day + 1 },
                    ..person.birth
                },
                // Another year.
                _ => Date {
                    year: if year > 1944 {
                        year - rng.random_range(1..=5)
                    } else {
                        year + 1
                    },
                    ..person.birth
                },
            };
            record.birth_date = Some(wrong.render(rng));
        }
        NikSexMismatch => {
            record.sex = Some(
                match record.sex.as_deref() {
                    Some("L") => "P",
                    Some("P") => "L",
                    Some("M") => "F",
                    _ => "M",
                }
                .to_owned(),
            );
        }
        KkMissing => record.kk = None,
        KkInvalid => {
            let kk = record.kk.take().unwrap_or_default();
            record.kk = Some(match rng.random_range(0..4) {
                0 => kk[..15].to_owned(),
                1 => format!("{}0000", &kk[..12]),
                // Issue month 13.
                2 => format!("{}13{}", &kk[..8], &kk[10..]),
                _ => format!("{}.{}E+15", &kk[..1], &kk[1..6]),
            });
        }
        NameMissing => record.name = None,
        MotherNameMissing => record.mother_name = None,
        BirthPlaceMissing => record.birth_place = None,
        BirthDateMissing => record.birth_date = None,
        SexMissing => record.sex = None,
        AddressMissing => record.address = None,
        RegionCodeInvalid => {
            let region = person.region6();
            let village = person.village.to_string();
            record.region_code = Some(match rng.random_range(0..3) {
                // Village code cut short: nine digits.
                0 => format!(
                    "{}.{}.{}.{}",
                    &region[..2],
                    &region[2..4],
                    &region[4..],
                    &village[..3]
                ),
                // A letter O typed for a zero.
                1 => format!(
                    "{}.{}.{}.{}",
                    &region[..2],
                    &region[2..4],
                    &region[4..],
                    village.replacen('0', "O", 1)
                ),
                // Eleven digits.
                _ => format!("{region}{village}{}", rng.random_range(0..10)),
            });
        }
        BankUnknown => record.bank_code = Some(pick(rng, &["999", "998"]).to_owned()),
        AmountInvalid => {
            record.amount =
                Some(pick(rng, &["enam ratus ribu", "0", "-600000", "6OO000"]).to_owned());
        }
        other => unreachable!("the generator does not produce {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn digits(text: &str) -> String {
        text.chars().filter(char::is_ascii_digit).collect()
    }

    #[test]
    fn same_seed_same_batch_other_seed_other_batch() {
        assert_eq!(generate(500, 70, 7), generate(500, 70, 7));
        assert_ne!(generate(500, 70, 7).records, generate(500, 70, 8).records);
    }

    #[test]
    fn counts_add_up_and_every_problem_kind_occurs() {
        let batch = generate(3000, 430, 42);
        assert_eq!(batch.records.len(), 3000);
        assert!(
            batch
                .records
                .iter()
                .enumerate()
                .all(|(i, r)| r.row as usize == i + 1)
        );
        for p in &PROBLEMS {
            assert!(
                batch.expected_reasons.get(&p.code).copied().unwrap_or(0) > 0,
                "{}",
                p.code
            );
        }
        let total: u32 = batch.expected_reasons.values().sum();
        assert!((430..=430 + 80).contains(&total), "{total}");
        let most = batch
            .expected_reasons
            .iter()
            .max_by_key(|(_, n)| **n)
            .unwrap();
        assert_eq!(*most.0, ReasonCode::MotherNameMissing);
    }

    #[test]
    fn records_look_like_an_office_list() {
        let batch = generate(2000, 0, 1);
        let records = &batch.records;
        assert!(batch.expected_reasons.is_empty());
        let long = records
            .iter()
            .filter(|r| r.name.as_ref().unwrap().len() > 30)
            .count();
        assert!(long > 50, "{long}");
        let with_account = records
            .iter()
            .filter(|r| r.account_number.is_some())
            .count();
        assert!((100..=300).contains(&with_account), "{with_account}");
        let bri = records
            .iter()
            .filter(|r| r.bank_code.as_deref() == Some("002"))
            .count();
        assert!(bri > 1000, "{bri}");
        for r in records {
            let nik = digits(r.nik.as_ref().unwrap());
            assert_eq!(nik.len(), 16);
            assert_eq!(digits(r.region_code.as_ref().unwrap())[..6], nik[..6]);
            assert_eq!(digits(r.kk.as_ref().unwrap())[..6], nik[..6]);
            let female = nik[6..8].parse::<u8>().unwrap() > 40;
            assert_eq!(female, matches!(r.sex.as_deref(), Some("P" | "F")));
        }
    }

    #[test]
    fn csv_round_trips_through_parse_bytes() {
        let batch = generate(1000, 150, 3);
        let mut bytes = Vec::new();
        write_csv(&batch.records, &mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("nik,no_kk,nama,nama_ibu_kandung,tempat_lahir,tanggal_lahir,jenis_kelamin,alamat,kode_wilayah,no_hp,kode_bank,no_rekening,nominal\n"));
        let parsed = crate::intake::parse_bytes("demo.csv", &bytes).unwrap();
        assert_eq!(parsed, batch.records);
    }

    /// Runs the real domain validation over generated batches: exactly the incomplete records
    /// fail, with exactly the expected reasons, and the complete ones have distinct NIKs.
    #[test]
    fn validation_finds_exactly_the_expected_reasons() {
        for (recipients, incomplete, seed) in [
            (3000, 430, 42),
            (3000, 430, 1),
            (100, 15, 9),
            (5000, 5000, 5),
            (2000, 0, 6),
            (20, 3, 4),
        ] {
            let batch = generate(recipients, incomplete, seed);
            let mut failed = 0;
            let mut found: BTreeMap<ReasonCode, u32> = BTreeMap::new();
            let mut niks = HashSet::new();
            for record in &batch.records {
                match crate::domain::validate(record, &crate::domain::AmountRange::DEFAULT) {
                    Ok(_) => {
                        let nik = digits(record.nik.as_ref().unwrap());
                        assert!(niks.insert(nik), "double recipient in row {}", record.row);
                    }
                    Err(reasons) => {
                        failed += 1;
                        let codes: HashSet<_> = reasons.iter().map(|r| r.code).collect();
                        assert_eq!(
                            codes.len(),
                            reasons.len(),
                            "row {}: {reasons:?}",
                            record.row
                        );
                        for code in codes {
                            *found.entry(code).or_insert(0) += 1;
                        }
                    }
                }
            }
            assert_eq!(failed, incomplete, "({recipients}, {incomplete}, {seed})");
            assert_eq!(
                found, batch.expected_reasons,
                "({recipients}, {incomplete}, {seed})"
            );
        }
    }

    /// `cargo test --release -- --ignored million`: a national-scale batch in seconds.
    #[test]
    #[ignore]
    fn million_records_in_seconds() {
        let start = std::time::Instant::now();
        let batch = generate(1_000_000, 140_000, 42);
        let elapsed = start.elapsed();
        assert_eq!(batch.records.len(), 1_000_000);
        let mut niks = HashSet::with_capacity(batch.records.len());
        let mut failed = 0;
        for record in &batch.records {
            match crate::domain::validate(record, &crate::domain::AmountRange::DEFAULT) {
                Ok(_) => assert!(niks.insert(digits(record.nik.as_ref().unwrap()))),
                Err(_) => failed += 1,
            }
        }
        assert_eq!(failed, 140_000);
        eprintln!("generated 1,000,000 records in {elapsed:?}");
        assert!(elapsed.as_secs() < 10, "{elapsed:?}");
    }

    #[test]
    fn valid_records_are_the_complete_batch_streamed() {
        let streamed: Vec<_> = valid_records(500, 9).collect();
        assert_eq!(streamed, generate(500, 0, 9).records);
    }
}
