//! Every text of the console, in one catalogue: Bahasa Indonesia first, English as the switch
//! (the `lang` cookie). Also how amounts (`Rp 600.000`), dates (`30 Nov 2026`) and times (WIB)
//! are written, and the reasons and fields in words.

use chrono::{DateTime, Datelike as _, FixedOffset, Utc};
use rust_decimal::Decimal;

/// The console's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Id => Lang::En,
            Lang::En => Lang::Id,
        }
    }
}

/// `(key, Indonesian, English)`.
const CATALOGUE: &[(&str, &str, &str)] = &[
    ("app", "Salur — konsol kantor", "Salur — office console"),
    ("sign_in", "Masuk", "Sign in"),
    ("sign_out", "Keluar", "Sign out"),
    ("login", "Nama pengguna", "Login"),
    ("password", "Kata sandi", "Password"),
    (
        "signin_refused",
        "Nama pengguna atau kata sandi salah. Coba lagi; setelah beberapa kali salah, jawaban sengaja diperlambat.",
        "Wrong login or password. Try again; after several failures the answer is slowed down on purpose.",
    ),
    (
        "signin_expired",
        "Formulir sudah kedaluwarsa. Muat ulang halaman lalu masuk lagi.",
        "The form has expired. Reload the page and sign in again.",
    ),
    ("batches", "Daftar batch", "Batches"),
    ("upload", "Unggah batch", "Upload a batch"),
    ("change_password", "Ganti kata sandi", "Change password"),
    (
        "must_change",
        "Kata sandi Anda adalah kata sandi sekali pakai: gantilah sekarang sebelum melanjutkan.",
        "Your password is a one-time password: change it now before going on.",
    ),
    (
        "current_password",
        "Kata sandi sekarang",
        "Current password",
    ),
    (
        "new_password",
        "Kata sandi baru (minimal 10 karakter)",
        "New password (at least 10 characters)",
    ),
    (
        "repeat_password",
        "Ulangi kata sandi baru",
        "Repeat the new password",
    ),
    (
        "pw_wrong_current",
        "Kata sandi sekarang salah.",
        "The current password is wrong.",
    ),
    (
        "pw_too_short",
        "Kata sandi baru terlalu pendek: minimal 10 karakter.",
        "The new password is too short: at least 10 characters.",
    ),
    (
        "pw_mismatch",
        "Kedua kata sandi baru tidak sama.",
        "The two new passwords differ.",
    ),
    (
        "pw_same",
        "Kata sandi baru harus berbeda dari yang sekarang.",
        "The new password must differ from the current one.",
    ),
    (
        "pw_changed",
        "Kata sandi sudah diganti.",
        "The password was changed.",
    ),
    ("save", "Simpan", "Save"),
    ("office", "Kantor", "Office"),
    ("program", "Program", "Programme"),
    ("period", "Periode", "Period"),
    ("file", "Berkas", "File"),
    ("records", "Data", "Records"),
    ("uploaded_at", "Diunggah", "Uploaded"),
    ("progress", "Kemajuan", "Progress"),
    ("no_batches", "Belum ada batch.", "No batches yet."),
    ("open", "Buka", "Open"),
    (
        "upload_help",
        "Pilih berkas CSV (UTF-8) atau Excel (.xlsx) berisi daftar penerima, satu baris per penerima.",
        "Pick a CSV (UTF-8) or Excel (.xlsx) file of recipients, one row per recipient.",
    ),
    ("upload_button", "Unggah", "Upload"),
    (
        "upload_refused",
        "Berkas ditolak; tidak ada yang disimpan.",
        "The file was refused; nothing was stored.",
    ),
    ("where", "Letak masalah", "Where"),
    ("line", "baris", "line"),
    ("row", "baris data", "data row"),
    ("column", "kolom", "column"),
    ("what_to_do", "Yang perlu dilakukan", "What to do"),
    ("details", "Rincian", "Details"),
    ("uploaded", "Batch diterima", "Batch received"),
    ("funnel", "Alur", "Funnel"),
    ("f_received", "Diterima", "Received"),
    ("f_opened", "Rekening dibuka", "Account opened"),
    ("f_verified", "Terverifikasi", "Verified"),
    ("f_disbursed", "Tersalurkan", "Disbursed"),
    ("amount", "Nominal", "Amount"),
    ("in_flight", "dalam proses", "in progress"),
    (
        "blocked_by_reason",
        "Data yang tertahan, menurut alasan",
        "Blocked records, by reason",
    ),
    ("reason", "Alasan", "Reason"),
    ("count", "Jumlah", "Count"),
    ("reconciliation", "Rekonsiliasi bank", "Bank reconciliation"),
    (
        "reconciliations",
        "Rekonsiliasi rekening koran",
        "Reconciled bank statements",
    ),
    (
        "reconciliations_help",
        "Rekening koran bank yang dicocokkan baris demi baris dengan transfer Salur (hanya dibaca).",
        "Bank statements matched line by line against salur's transfers (read-only).",
    ),
    (
        "no_reconciliations",
        "Belum ada rekening koran yang direkonsiliasi.",
        "No bank statement has been reconciled yet.",
    ),
    ("no_exceptions", "Tidak ada selisih.", "No exceptions."),
    ("exception", "Selisih", "Exception"),
    ("exceptions", "Selisih", "Exceptions"),
    ("statement", "Rekening koran", "Statement"),
    ("statement_date", "Tanggal rekening koran", "Statement date"),
    ("debits", "Debit", "Debits"),
    ("credits", "Kredit (dana kembali)", "Credits (returns)"),
    ("matched", "Cocok", "Matched"),
    ("reconciled_at", "Direkonsiliasi", "Reconciled"),
    ("opening_balance", "Saldo awal", "Opening balance"),
    ("closing_balance", "Saldo akhir", "Closing balance"),
    ("expected_amount", "Nominal di Salur", "Amount in salur"),
    ("file_line", "baris berkas", "file line"),
    (
        "not_on_statement",
        "tidak ada di rekening koran",
        "not on the statement",
    ),
    (
        "first_shown",
        "Hanya ditampilkan yang pertama:",
        "Only the first shown:",
    ),
    (
        "exc_not_disbursed",
        "Dibayar bank, belum tersalurkan di Salur",
        "Paid by the bank, not disbursed in salur",
    ),
    (
        "exc_unknown",
        "Referensi tidak dikenal Salur",
        "Reference unknown to salur",
    ),
    (
        "exc_missing",
        "Tersalurkan di Salur, tidak ada di rekening koran",
        "Disbursed in salur, not on the statement",
    ),
    (
        "exc_amount_mismatch",
        "Nominal berbeda dengan transfer",
        "Amount differs from the transfer",
    ),
    ("exc_duplicate", "Didebit dua kali", "Debited twice"),
    (
        "blocked_total",
        "Jumlah data yang tertahan",
        "Blocked records in all",
    ),
    (
        "counted_under_each",
        "Data dengan lebih dari satu masalah dihitung pada setiap alasannya.",
        "A record with more than one problem is counted under each of its reasons.",
    ),
    (
        "no_blocked",
        "Tidak ada data yang tertahan.",
        "No blocked records.",
    ),
    ("state", "Status", "State"),
    ("all", "Semua", "All"),
    ("filter", "Saring", "Filter"),
    ("next_page", "Halaman berikutnya", "Next page"),
    ("first_page", "Halaman pertama", "First page"),
    (
        "download_fixes",
        "Unduh data yang perlu diperbaiki",
        "Download the records to fix",
    ),
    (
        "upload_fixes",
        "Unggah perbaikan (Excel)",
        "Upload the fixes (Excel)",
    ),
    (
        "upload_fixes_help",
        "Isi kolom berwarna pada berkas yang diunduh, simpan, lalu unggah di sini. Semua perbaikan diterapkan sekaligus, atau tidak sama sekali.",
        "Fill in the coloured cells of the downloaded workbook, save it and upload it here. All fixes are applied together, or none.",
    ),
    ("fixes_applied", "Perbaikan diterapkan", "Fixes applied"),
    (
        "fixes_refused",
        "Berkas perbaikan ditolak; tidak ada yang diubah.",
        "The fixes file was refused; nothing was changed.",
    ),
    ("ready", "siap dikirim ulang", "ready to replay"),
    ("still_reasons", "masih ada masalah", "still has problems"),
    (
        "replay_batch",
        "Kirim ulang data yang sudah lengkap",
        "Replay the complete records",
    ),
    ("replayed", "Dikirim ulang", "Replayed"),
    ("still_blocked", "masih tertahan", "still blocked"),
    ("approval", "Persetujuan", "Approval"),
    ("record", "Data penerima", "Record"),
    ("fields", "Isian", "Fields"),
    ("value", "Nilai (disamarkan)", "Value (masked)"),
    ("batch", "Batch", "Batch"),
    ("problem", "Masalah", "Problem"),
    ("fix_form", "Perbaiki", "Fix"),
    (
        "fix_help",
        "Isi hanya kolom yang ingin diperbaiki; kolom kosong tidak diubah.",
        "Fill in only the fields to correct; empty fields are left as they are.",
    ),
    ("fix_saved", "Perbaikan disimpan.", "The fix was saved."),
    ("fix_refused", "Perbaikan ditolak", "The fix was refused"),
    (
        "replay_record",
        "Kirim ulang data ini",
        "Replay this record",
    ),
    ("history", "Riwayat", "History"),
    ("when", "Waktu", "When"),
    ("by", "Oleh", "By"),
    ("system", "sistem", "system"),
    (
        "approval_list",
        "Daftar pembayaran menunggu persetujuan",
        "Payment list awaiting approval",
    ),
    (
        "nothing_to_approve",
        "Tidak ada yang menunggu persetujuan.",
        "Nothing is waiting for approval.",
    ),
    ("total", "Total", "Total"),
    ("per_bank", "Per bank", "Per bank"),
    ("per_amount", "Per nominal", "Per amount"),
    ("bank", "Bank", "Bank"),
    ("budget_allocated", "Pagu", "Allocation"),
    ("budget_used", "Terpakai", "Used"),
    (
        "budget_left",
        "Sisa pagu setelah disetujui",
        "Budget left after approval",
    ),
    ("approve", "Setujui", "Approve"),
    ("reject", "Tolak", "Reject"),
    ("reject_why", "Alasan penolakan", "Why it is rejected"),
    (
        "approval_refused",
        "Daftar pembayaran tidak dapat disetujui; tidak ada yang berubah.",
        "The payment list cannot be approved; nothing changed.",
    ),
    (
        "approved",
        "Daftar pembayaran disetujui.",
        "The payment list was approved.",
    ),
    (
        "rejected",
        "Daftar pembayaran ditolak.",
        "The payment list was rejected.",
    ),
    (
        "maker_no_approve",
        "Hanya pemeriksa (checker) yang dapat menyetujui. Anda dapat melihat daftar ini.",
        "Only a checker approves. You may look at this list.",
    ),
    ("submitted_by", "Diunggah oleh", "Submitted by"),
    ("not_found", "Halaman tidak ditemukan", "Page not found"),
    (
        "not_found_text",
        "Halaman atau data ini tidak ada, atau bukan milik kantor Anda.",
        "This page or record does not exist, or does not belong to your office.",
    ),
    ("forbidden", "Tidak diizinkan", "Not allowed"),
    (
        "forbidden_text",
        "Peran Anda tidak mengizinkan tindakan ini.",
        "Your role does not allow this.",
    ),
    (
        "csrf_refused",
        "Formulir ditolak: token keamanan tidak ada atau salah. Muat ulang halaman lalu coba lagi.",
        "The form was refused: its security token is missing or wrong. Reload the page and try again.",
    ),
    ("error", "Terjadi kesalahan", "Something went wrong"),
    (
        "error_text",
        "Permintaan tidak dapat diselesaikan; tidak ada yang berubah. Coba lagi nanti.",
        "The request could not be completed; nothing changed. Try again later.",
    ),
    ("back", "Kembali", "Back"),
    ("signed_in_as", "Masuk sebagai", "Signed in as"),
    ("role_maker", "pembuat (maker)", "maker"),
    ("role_checker", "pemeriksa (checker)", "checker"),
    ("role_auditor", "auditor", "auditor"),
    ("role_admin", "admin", "admin"),
    ("language", "English", "Bahasa Indonesia"),
    ("skip", "Langsung ke isi", "Skip to content"),
    ("confirm_replay", "Kirim ulang sekarang", "Replay now"),
    (
        "fix_column",
        "perbaiki isi sel ini seperti dijelaskan di bawah, simpan, lalu unggah lagi.",
        "correct this cell as explained below, save, and upload again.",
    ),
    (
        "nothing_changed",
        "Tidak ada sel yang diubah pada berkas ini.",
        "No cell of this workbook was changed.",
    ),
    ("bank_reference", "Referensi bank", "Bank reference"),
    ("attempts", "Percobaan", "Attempts"),
    (
        "maker_only",
        "Hanya pembuat (maker) kantor yang dapat mengubah data.",
        "Only a maker of the office changes records.",
    ),
];

/// The text of `key` in `lang` (the key itself if the catalogue lacks it, which a test forbids).
pub fn t(lang: Lang, key: &str) -> &'static str {
    CATALOGUE
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, id, en)| match lang {
            Lang::Id => *id,
            Lang::En => *en,
        })
        .unwrap_or("?")
}

/// `Rp 600.000` (`Rp 1.250,50` with sen).
pub fn rupiah(amount: Decimal) -> String {
    let negative = amount.is_sign_negative() && !amount.is_zero();
    let a = amount.abs().round_dp(2);
    let whole = a.trunc();
    let sen = ((a - whole) * Decimal::from(100)).trunc();
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let sign = if negative { "-" } else { "" };
    if sen.is_zero() {
        format!("{sign}Rp {grouped}")
    } else {
        format!("{sign}Rp {grouped},{sen:0>2}")
    }
}

const MONTHS_ID: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn wib(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&FixedOffset::east_opt(7 * 3600).expect("WIB is UTC+7"))
}

/// `30 Nov 2026`, the day in WIB.
pub fn date(lang: Lang, at: DateTime<Utc>) -> String {
    let d = wib(at);
    let months = match lang {
        Lang::Id => MONTHS_ID,
        Lang::En => MONTHS_EN,
    };
    format!("{} {} {}", d.day(), months[d.month0() as usize], d.year())
}

/// `30 Nov 2026 14:05 WIB`.
pub fn time(lang: Lang, at: DateTime<Utc>) -> String {
    format!("{} {} WIB", date(lang, at), wib(at).format("%H:%M"))
}

/// A field of a record in words.
pub fn field(lang: Lang, key: &str) -> String {
    let (id, en) = match key {
        "nik" => ("NIK", "NIK"),
        "kk" => ("No. KK", "Family card (KK)"),
        "name" => ("Nama", "Name"),
        "mother_name" => ("Nama ibu kandung", "Mother's maiden name"),
        "birth_place" => ("Tempat lahir", "Place of birth"),
        "birth_date" => ("Tanggal lahir", "Date of birth"),
        "sex" => ("Jenis kelamin", "Sex"),
        "address" => ("Alamat", "Address"),
        "region_code" => ("Kode wilayah", "Region code"),
        "phone" => ("No. HP", "Phone"),
        "bank_code" => ("Kode bank", "Bank code"),
        "account_number" => ("No. rekening", "Account number"),
        "amount" => ("Nominal", "Amount"),
        "record" => ("Data", "Record"),
        other => (other, other),
    };
    match lang {
        Lang::Id => id.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// A record state in words (an unknown state as it is).
pub fn state(lang: Lang, s: &str) -> String {
    let (id, en) = match s {
        "received" => ("Diterima", "Received"),
        "account_requested" => ("Pembukaan rekening diminta", "Account requested"),
        "account_opened" => ("Rekening dibuka", "Account opened"),
        "awaiting_approval" => ("Menunggu persetujuan", "Awaiting approval"),
        "verified" => ("Terverifikasi", "Verified"),
        "transfer_requested" => ("Transfer diminta", "Transfer requested"),
        "disbursed" => ("Tersalurkan", "Disbursed"),
        "returned" => ("Dana dikembalikan bank", "Returned by the bank"),
        "blocked" => ("Tertahan (perlu perbaikan)", "Blocked (needs a fix)"),
        "rejected" => ("Ditolak", "Rejected"),
        "failed" => ("Gagal", "Failed"),
        "dead" => ("Macet", "Dead"),
        other => (other, other),
    };
    match lang {
        Lang::Id => id.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// A reason in words: what is wrong and what to do (the record's own English sentence when the
/// catalogue has none for the code).
pub fn reason(lang: Lang, code: &str, fallback: &str) -> String {
    let (id, en) = match code {
        "NIK_MISSING" => (
            "NIK belum diisi: isi 16 digit NIK dari KTP/KK.",
            "The NIK is missing: fill in the 16-digit NIK from the ID card.",
        ),
        "NIK_INVALID" => (
            "NIK tidak sah: harus 16 digit sesuai KTP/KK.",
            "The NIK is not valid: it must be the 16 digits of the ID card.",
        ),
        "NIK_BIRTH_DATE_MISMATCH" => (
            "Tanggal lahir tidak cocok dengan NIK: periksa tanggal lahir (atau NIK) pada KTP.",
            "The birth date does not agree with the NIK: check the birth date (or the NIK) on the ID card.",
        ),
        "NIK_SEX_MISMATCH" => (
            "Jenis kelamin tidak cocok dengan NIK: periksa jenis kelamin (L/P) atau NIK.",
            "The sex does not agree with the NIK: check the sex (L/P) or the NIK.",
        ),
        "KK_MISSING" => (
            "No. KK belum diisi: isi 16 digit nomor Kartu Keluarga.",
            "The family card number is missing: fill in its 16 digits.",
        ),
        "KK_INVALID" => (
            "No. KK tidak sah: harus 16 digit.",
            "The family card number is not valid: it must be 16 digits.",
        ),
        "NAME_MISSING" => (
            "Nama belum diisi: isi nama sesuai KTP.",
            "The name is missing: fill in the name as on the ID card.",
        ),
        "MOTHER_NAME_MISSING" => (
            "Nama ibu kandung belum diisi: bank memerlukannya untuk membuka rekening.",
            "The mother's maiden name is missing: the bank needs it to open the account.",
        ),
        "BIRTH_PLACE_MISSING" => (
            "Tempat lahir belum diisi.",
            "The place of birth is missing.",
        ),
        "BIRTH_DATE_MISSING" => (
            "Tanggal lahir belum diisi: tulis TTTT-BB-HH, mis. 1980-08-05.",
            "The birth date is missing: write YYYY-MM-DD, e.g. 1980-08-05.",
        ),
        "BIRTH_DATE_INVALID" => (
            "Tanggal lahir tidak sah: tulis TTTT-BB-HH, mis. 1980-08-05.",
            "The birth date is not valid: write YYYY-MM-DD, e.g. 1980-08-05.",
        ),
        "SEX_MISSING" => (
            "Jenis kelamin belum diisi: tulis L atau P.",
            "The sex is missing: write L or P.",
        ),
        "SEX_INVALID" => (
            "Jenis kelamin tidak sah: tulis L atau P.",
            "The sex is not valid: write L or P.",
        ),
        "ADDRESS_MISSING" => ("Alamat belum diisi.", "The address is missing."),
        "REGION_CODE_MISSING" => ("Kode wilayah belum diisi.", "The region code is missing."),
        "REGION_CODE_INVALID" => ("Kode wilayah tidak sah.", "The region code is not valid."),
        "BANK_UNKNOWN" => (
            "Kode bank tidak dikenal: gunakan kode bank penyalur (mis. 002 untuk BRI).",
            "The bank code is unknown: use a paying bank's code (e.g. 002 for BRI).",
        ),
        "ACCOUNT_NUMBER_INVALID" => (
            "No. rekening tidak sah untuk bank ini.",
            "The account number is not valid for this bank.",
        ),
        "AMOUNT_INVALID" => ("Nominal tidak sah.", "The amount is not valid."),
        "AMOUNT_NOT_ALLOWED" => (
            "Nominal tidak sesuai dengan program ini.",
            "The programme does not pay this amount.",
        ),
        "NIK_NOT_FOUND" => (
            "Bank tidak menemukan NIK ini di Dukcapil: periksa NIK.",
            "The bank did not find this NIK: check the NIK.",
        ),
        "ACCOUNT_NOT_FOUND" => (
            "Bank tidak menemukan rekening ini: periksa no. rekening.",
            "The bank did not find this account: check the account number.",
        ),
        "NIK_DATA_MISMATCH" => (
            "Data tidak cocok dengan Dukcapil: periksa nama, tanggal lahir dan NIK.",
            "The data does not match the civil registry: check the name, birth date and NIK.",
        ),
        "CUSTOMER_BLACKLISTED" => (
            "Bank menolak nasabah ini: pilih bank lain.",
            "The bank refuses this customer: choose another bank.",
        ),
        "ACCOUNT_CLOSED" => (
            "Rekening sudah ditutup: isi rekening lain.",
            "The account is closed: give another account.",
        ),
        "ACCOUNT_DORMANT" => (
            "Rekening tidak aktif (dormant): isi rekening lain.",
            "The account is dormant: give another account.",
        ),
        "ACCOUNT_BLOCKED" => (
            "Rekening diblokir: isi rekening lain.",
            "The account is blocked: give another account.",
        ),
        "NAME_MISMATCH" => (
            "Nama tidak sama dengan nama pemilik rekening: periksa nama atau rekening.",
            "The name differs from the account holder's: check the name or the account.",
        ),
        "DOUBLE_RECIPIENT" => (
            "Penerima ganda: orang ini sudah menerima pada periode ini.",
            "Double recipient: this person is already paid in this period.",
        ),
        "APPROVAL_REJECTED" => (
            "Daftar pembayaran ditolak oleh pemeriksa: periksa lalu kirim ulang.",
            "A checker rejected the payment list: check it, then replay.",
        ),
        _ => ("", ""),
    };
    let text = match lang {
        Lang::Id => id,
        Lang::En => en,
    };
    if text.is_empty() {
        fallback.to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    #[test]
    fn rupiah_is_written_as_in_indonesia() {
        assert_eq!(rupiah(Decimal::from(600_000)), "Rp 600.000");
        assert_eq!(rupiah(Decimal::from(1_800_000_000)), "Rp 1.800.000.000");
        assert_eq!(rupiah(Decimal::ZERO), "Rp 0");
        assert_eq!(rupiah(Decimal::from_str("1250.5").unwrap()), "Rp 1.250,50");
        assert_eq!(rupiah(Decimal::from(-300_000)), "-Rp 300.000");
    }

    #[test]
    fn dates_and_times_are_in_wib() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T20:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(date(Lang::Id, at), "1 Des 2026");
        assert_eq!(time(Lang::Id, at), "1 Des 2026 03:05 WIB");
        assert_eq!(date(Lang::En, at), "1 Dec 2026");
    }

    #[test]
    fn every_key_the_pages_use_is_in_the_catalogue() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("pages.rs"),
            include_str!("excel.rs"),
            include_str!("reconciliation.rs"),
        ];
        let mut used = 0;
        for src in sources {
            for (i, _) in src.match_indices("lang, \"") {
                let before = &src[..i];
                if !["t(", "t(self.", "t(console."]
                    .iter()
                    .any(|p| before.ends_with(p) && !before.ends_with(&format!(":{p}")))
                {
                    continue; // text::state(lang, …), text::field(lang, …)
                }
                let rest = &src[i + "lang, \"".len()..];
                let key = &rest[..rest.find('"').unwrap()];
                assert!(CATALOGUE.iter().any(|(k, _, _)| *k == key), "{key}");
                used += 1;
            }
        }
        assert!(used > 50, "{used}");
        for role in ["maker", "checker", "auditor", "admin"] {
            assert_ne!(t(Lang::Id, &format!("role_{role}")), "?");
        }
    }

    #[test]
    fn every_key_has_both_languages_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, id, en) in CATALOGUE {
            assert!(seen.insert(*k), "{k} twice");
            assert!(!id.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
