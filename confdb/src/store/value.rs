//! Typed values and key names, with corosync's cmap rules (`include/corosync/cmap.h`,
//! `exec/icmap.c`) and corosync-cmapctl(8)'s type names and printing.

use std::fmt;
use std::str::FromStr;

/// Shortest key name cmap accepts (`ICMAP_KEYNAME_MINLEN`).
pub const KEY_LEN_MIN: usize = 3;
/// Longest key name cmap accepts (`ICMAP_KEYNAME_MAXLEN`).
pub const KEY_LEN_MAX: usize = 255;
/// Longest string or binary value cmap accepts, in bytes (`ICMAP_MAX_VALUE_LEN`).
pub const VALUE_LEN_MAX: usize = 16 * 1024;

/// A key name that cmap would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Shorter than [`KEY_LEN_MIN`] bytes.
    #[error("key {key:?} is shorter than {KEY_LEN_MIN} characters")]
    TooShort {
        /// The key.
        key: String,
    },
    /// Longer than [`KEY_LEN_MAX`] bytes.
    #[error("key is {len} characters long, longer than {KEY_LEN_MAX}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character other than `a-z A-Z 0-9 . _ - / :`.
    #[error("key {key:?} has {ch:?} at byte {at}; keys use a-z A-Z 0-9 . _ - / :")]
    BadChar {
        /// The key.
        key: String,
        /// The first bad character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

/// Checks a key name as cmap does when a key is created (`icmap_check_key_name`): 3 to 255
/// bytes of ASCII letters, digits and `. _ - / :`.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.len() < KEY_LEN_MIN {
        return Err(KeyError::TooShort { key: key.to_string() });
    }
    if key.len() > KEY_LEN_MAX {
        return Err(KeyError::TooLong { len: key.len() });
    }
    match key.char_indices().find(|&(_, c)| !is_key_char(c)) {
        Some((at, ch)) => Err(KeyError::BadChar { key: key.to_string(), ch, at }),
        None => Ok(()),
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')
}

/// The type of a [`Value`]; the names are corosync-cmapctl's (`u32`, `str`, `bin`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueType {
    /// `i8`
    I8,
    /// `u8`
    U8,
    /// `i16`
    I16,
    /// `u16`
    U16,
    /// `i32`
    I32,
    /// `u32`
    U32,
    /// `i64`
    I64,
    /// `u64`
    U64,
    /// `flt`
    Float,
    /// `dbl`
    Double,
    /// `str`
    String,
    /// `bin`
    Binary,
}

impl ValueType {
    /// Every type, in cmap's numbering order.
    pub const ALL: [ValueType; 12] = [
        ValueType::I8,
        ValueType::U8,
        ValueType::I16,
        ValueType::U16,
        ValueType::I32,
        ValueType::U32,
        ValueType::I64,
        ValueType::U64,
        ValueType::Float,
        ValueType::Double,
        ValueType::String,
        ValueType::Binary,
    ];

    /// corosync-cmapctl's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::I8 => "i8",
            ValueType::U8 => "u8",
            ValueType::I16 => "i16",
            ValueType::U16 => "u16",
            ValueType::I32 => "i32",
            ValueType::U32 => "u32",
            ValueType::I64 => "i64",
            ValueType::U64 => "u64",
            ValueType::Float => "flt",
            ValueType::Double => "dbl",
            ValueType::String => "str",
            ValueType::Binary => "bin",
        }
    }

    /// cmap's number of the type (`CMAP_VALUETYPE_*`, 1 to 12), for the wire.
    pub fn cmap_code(self) -> u8 {
        self as u8 + 1
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ValueType {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        ValueType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| ValueError::UnknownType { name: s.to_string() })
    }
}

/// A value cmap would refuse, or text that is not a value of the type asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The type name is none of [`ValueType::name`]'s.
    #[error("unknown type {name:?}; types are i8 u8 i16 u16 i32 u32 i64 u64 flt dbl str bin")]
    UnknownType {
        /// The name given.
        name: String,
    },
    /// The text is not a number of that type, or is out of its range.
    #[error("{text:?} is not a valid {ty} value")]
    BadText {
        /// The type asked for.
        ty: ValueType,
        /// The text given.
        text: String,
    },
    /// A string or binary value longer than [`VALUE_LEN_MAX`] bytes.
    #[error("value is {len} bytes long, longer than {VALUE_LEN_MAX}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A string with a NUL byte, which cmap's C strings cannot hold.
    #[error("string value has a NUL byte at {at}")]
    NulInString {
        /// Its byte offset.
        at: usize,
    },
}

/// A typed value, as cmap stores it.
///
/// Equality is bitwise for `Float` and `Double` (as cmap's `memcmp`), so a NaN equals itself
/// and setting a key to the value it has is never a change.
#[derive(Clone, Debug)]
pub enum Value {
    /// Signed 8-bit.
    I8(i8),
    /// Unsigned 8-bit.
    U8(u8),
    /// Signed 16-bit.
    I16(i16),
    /// Unsigned 16-bit.
    U16(u16),
    /// Signed 32-bit.
    I32(i32),
    /// Unsigned 32-bit.
    U32(u32),
    /// Signed 64-bit.
    I64(i64),
    /// Unsigned 64-bit.
    U64(u64),
    /// Single precision.
    Float(f32),
    /// Double precision.
    Double(f64),
    /// UTF-8 text without NUL bytes.
    String(String),
    /// Raw bytes.
    Binary(Vec<u8>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Value {
    /// Its type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::I8(_) => ValueType::I8,
            Value::U8(_) => ValueType::U8,
            Value::I16(_) => ValueType::I16,
            Value::U16(_) => ValueType::U16,
            Value::I32(_) => ValueType::I32,
            Value::U32(_) => ValueType::U32,
            Value::I64(_) => ValueType::I64,
            Value::U64(_) => ValueType::U64,
            Value::Float(_) => ValueType::Float,
            Value::Double(_) => ValueType::Double,
            Value::String(_) => ValueType::String,
            Value::Binary(_) => ValueType::Binary,
        }
    }

    /// Its type's name (`u32`, `str`).
    pub fn type_name(&self) -> &'static str {
        self.value_type().name()
    }

    /// Parses `text` as a value of type `ty`, as `corosync-cmapctl -s KEY TYPE VALUE` does:
    /// integers in decimal and in the type's range, `flt`/`dbl` as decimal or exponent
    /// notation, `str` as is. `bin` takes the form [`Value`]'s `Display` prints (printable
    /// ASCII as is, `\\` for a backslash, `\xHH` for any other byte), so printed values read
    /// back; corosync-cmapctl reads a file's bytes instead.
    pub fn parse(ty: ValueType, text: &str) -> Result<Value, ValueError> {
        let bad = || ValueError::BadText { ty, text: text.to_string() };
        let value = match ty {
            ValueType::I8 => Value::I8(text.parse().map_err(|_| bad())?),
            ValueType::U8 => Value::U8(text.parse().map_err(|_| bad())?),
            ValueType::I16 => Value::I16(text.parse().map_err(|_| bad())?),
            ValueType::U16 => Value::U16(text.parse().map_err(|_| bad())?),
            ValueType::I32 => Value::I32(text.parse().map_err(|_| bad())?),
            ValueType::U32 => Value::U32(text.parse().map_err(|_| bad())?),
            ValueType::I64 => Value::I64(text.parse().map_err(|_| bad())?),
            ValueType::U64 => Value::U64(text.parse().map_err(|_| bad())?),
            ValueType::Float => Value::Float(text.parse().map_err(|_| bad())?),
            ValueType::Double => Value::Double(text.parse().map_err(|_| bad())?),
            ValueType::String => Value::String(text.to_string()),
            ValueType::Binary => Value::Binary(unescape_binary(text).ok_or_else(bad)?),
        };
        value.check()?;
        Ok(value)
    }

    /// Parses a type name and text (`"u32"`, `"3000"`): [`ValueType::from_str`] then
    /// [`Value::parse`].
    pub fn parse_typed(type_name: &str, text: &str) -> Result<Value, ValueError> {
        Value::parse(type_name.parse()?, text)
    }

    /// Checks the limits cmap puts on a value: at most [`VALUE_LEN_MAX`] bytes, no NUL in a
    /// string.
    pub fn check(&self) -> Result<(), ValueError> {
        let len = match self {
            Value::String(s) => {
                if let Some(at) = s.bytes().position(|b| b == 0) {
                    return Err(ValueError::NulInString { at });
                }
                s.len()
            }
            Value::Binary(b) => b.len(),
            _ => 0,
        };
        if len > VALUE_LEN_MAX {
            return Err(ValueError::TooLong { len });
        }
        Ok(())
    }

    /// The value if it is a `U64` (counters are).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// The value if it is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The value alone, as corosync-cmapctl prints it after `= `: floats with six decimals
/// (`%f`; `nan`, `-inf`), binary with printable ASCII as is, `\\` and `\xHH` (as `-b` does).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I8(v) => write!(f, "{v}"),
            Value::U8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::Float(v) => fmt_c_double(f, f64::from(*v)),
            Value::Double(v) => fmt_c_double(f, *v),
            Value::String(s) => f.write_str(s),
            Value::Binary(b) => {
                for &byte in b {
                    match byte {
                        b'\\' => f.write_str("\\\\")?,
                        b' '..=b'~' => write!(f, "{}", byte as char)?,
                        _ => write!(f, "\\x{byte:02X}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// C's `%f`: six decimals, and `nan`, `-nan`, `inf`, `-inf` (glibc's spelling).
fn fmt_c_double(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v.is_nan() {
        write!(f, "{sign}nan")
    } else if v.is_infinite() {
        write!(f, "{sign}inf")
    } else {
        write!(f, "{v:.6}")
    }
}

/// One key and its value, printed as corosync-cmapctl prints a key:
/// `totem.token (u32) = 3000`.
#[derive(Copy, Clone, Debug)]
pub struct KeyValue<'a>(pub &'a str, pub &'a Value);

impl fmt::Display for KeyValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) = {}", self.0, self.1.type_name(), self.1)
    }
}

/// The inverse of binary's `Display`; `None` on a lone backslash or a bad escape.
fn unescape_binary(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if bytes.get(i + 1) == Some(&b'x') {
            let hex = text.get(i + 2..i + 4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            return None;
        }
    }
    Some(out)
}
