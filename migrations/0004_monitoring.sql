-- Indexes for the gauges the workers read every few seconds (src/store/stats.rs), so that
-- monitoring costs what is parked or in flight, not the size of the whole records table.

-- Parked records (blocked, dead) by state, oldest first.
CREATE INDEX records_parked ON records (state, updated_at)
    WHERE state IN ('blocked', 'dead');

-- Batches that still have records in flight.
CREATE INDEX records_in_flight_batch ON records (batch_id)
    WHERE state IN ('received', 'account_requested', 'account_opened', 'verified',
                    'transfer_requested');
