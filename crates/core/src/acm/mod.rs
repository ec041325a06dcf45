//! ACM certificate lifecycle: records, state machine, issuance.
