//! Errors that reach a client, each with its PostgreSQL SQLSTATE.
use alloc::string::{String, ToString};
use core::fmt;

/// A five-character SQLSTATE code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlState(pub &'static str);

impl SqlState {
    pub const SYNTAX_ERROR: SqlState = SqlState("42601");
    pub const UNDEFINED_TABLE: SqlState = SqlState("42P01");
    pub const UNDEFINED_COLUMN: SqlState = SqlState("42703");
    pub const DUPLICATE_TABLE: SqlState = SqlState("42P07");
    pub const DUPLICATE_COLUMN: SqlState = SqlState("42701");
    pub const DATATYPE_MISMATCH: SqlState = SqlState("42804");
    pub const UNDEFINED_FUNCTION: SqlState = SqlState("42883");
    pub const INVALID_TEXT_REPRESENTATION: SqlState = SqlState("22P02");
    pub const NUMERIC_OUT_OF_RANGE: SqlState = SqlState("22003");
    pub const DIVISION_BY_ZERO: SqlState = SqlState("22012");
    pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState("54000");
    pub const STATEMENT_TOO_COMPLEX: SqlState = SqlState("54001");
    pub const DISK_FULL: SqlState = SqlState("53100");
    pub const IO_ERROR: SqlState = SqlState("58030");
    pub const DATA_CORRUPTED: SqlState = SqlState("XX001");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");
    pub const READ_ONLY: SqlState = SqlState("25006");
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const IN_FAILED_TRANSACTION: SqlState = SqlState("25P02");
    pub const LOCK_NOT_AVAILABLE: SqlState = SqlState("55P03");
    pub const INVALID_COLUMN_DEFINITION: SqlState = SqlState("42611");
    pub const TOO_MANY_COLUMNS: SqlState = SqlState("54011");
    pub const INVALID_DATETIME: SqlState = SqlState("22007");
    pub const DATETIME_FIELD_OVERFLOW: SqlState = SqlState("22008");
    pub const CANNOT_COERCE: SqlState = SqlState("42846");
    pub const STRING_DATA_RIGHT_TRUNCATION: SqlState = SqlState("22001");
    pub const CARDINALITY_VIOLATION: SqlState = SqlState("21000");
    pub const SUBSTRING_ERROR: SqlState = SqlState("22011");
    pub const INVALID_ARGUMENT_FOR_POWER: SqlState = SqlState("2201F");
    pub const INVALID_ARGUMENT_FOR_LOG: SqlState = SqlState("2201E");
    pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
    pub const GROUPING_ERROR: SqlState = SqlState("42803");
    pub const SERIALIZATION_FAILURE: SqlState = SqlState("40001");
    pub const DEADLOCK_DETECTED: SqlState = SqlState("40P01");
    pub const UNDEFINED_OBJECT: SqlState = SqlState("42704");
    pub const DUPLICATE_OBJECT: SqlState = SqlState("42710");
    pub const WRONG_OBJECT_TYPE: SqlState = SqlState("42809");
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState("42702");
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState("22023");
    pub const UNDEFINED_DATABASE: SqlState = SqlState("3D000");
    pub const GENERATED_ALWAYS: SqlState = SqlState("428C9");
    pub const SEQUENCE_GENERATOR_LIMIT_EXCEEDED: SqlState = SqlState("2200H");
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: SqlState = SqlState("55000");
    pub const DEPENDENT_OBJECTS: SqlState = SqlState("2BP01");
    pub const INVALID_TABLE_DEFINITION: SqlState = SqlState("42P16");
    pub const INVALID_ROW_COUNT: SqlState = SqlState("2201W");
    pub const INVALID_COLUMN_REFERENCE: SqlState = SqlState("42P10");
    pub const DUPLICATE_ALIAS: SqlState = SqlState("42712");
    pub const OUT_OF_MEMORY: SqlState = SqlState("53200");
    pub const NO_ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25P01");
    pub const INVALID_SAVEPOINT_SPECIFICATION: SqlState = SqlState("3B001");
    pub const WINDOWING_ERROR: SqlState = SqlState("42P20");
    pub const INVALID_PRECEDING_OR_FOLLOWING_SIZE: SqlState = SqlState("22013");
    pub const INVALID_ARGUMENT_FOR_NTILE: SqlState = SqlState("22014");
    pub const INVALID_ARGUMENT_FOR_NTH_VALUE: SqlState = SqlState("22016");
    pub const BAD_COPY_FILE_FORMAT: SqlState = SqlState("22P04");
    pub const CHARACTER_NOT_IN_REPERTOIRE: SqlState = SqlState("22021");
    pub const QUERY_CANCELED: SqlState = SqlState("57014");
    pub const INVALID_REGULAR_EXPRESSION: SqlState = SqlState("2201B");
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    pub code: SqlState,
    pub message: String,
}

impl DbError {
    pub fn new(code: SqlState, message: impl ToString) -> DbError {
        DbError { code, message: message.to_string() }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.0)
    }
}

/// `err!(CODE, "format", args)` builds a `DbError`.
#[macro_export]
macro_rules! err {
    ($code:ident, $($arg:tt)*) => {
        $crate::error::DbError::new($crate::error::SqlState::$code, alloc::format!($($arg)*))
    };
}
