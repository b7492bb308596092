//! Turning application values into session values that are sure to load back.
//!
//! `serde_json::to_value` writes NaN and infinities as `null` (silently changing the value) and
//! recurses without limit (a 100,000-deep value overflows the stack). A bounded walk over the
//! value's `Serialize` impl catches both before `to_value` runs; the codec's `check_storable`
//! then has the last word on the resulting JSON.

use std::fmt;

use serde::{Serialize, ser};
use serde_json::Value;
use sessionkit_codec::json::{JsonError, MAX_DEPTH, check_storable};

use crate::Error;

/// `value` as a session value, or why it cannot be stored.
///
/// # Errors
///
/// [`Error::Unstorable`] for nesting deeper than [`MAX_DEPTH`] or a non-finite float;
/// [`Error::Type`] for a value JSON cannot represent (a map with non-string keys, ...).
pub(crate) fn to_storable<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    match value.serialize(Walker { depth: 0 }) {
        Ok(()) | Err(WalkError::Custom) => {}
        Err(WalkError::Json(error)) => return Err(Error::Unstorable(error)),
    }
    let value = serde_json::to_value(value).map_err(Error::Type)?;
    check_storable(&value).map_err(Error::Unstorable)?;
    Ok(value)
}

#[derive(Debug)]
enum WalkError {
    Json(JsonError),
    /// The value's own `Serialize` failed; `to_value` will report it.
    Custom,
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(error) => fmt::Display::fmt(error, f),
            Self::Custom => f.write_str("the value failed to serialize"),
        }
    }
}

impl std::error::Error for WalkError {}

impl ser::Error for WalkError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Self::Custom
    }
}

/// Walks a value as serde_json would write it, counting JSON nesting depth.
#[derive(Clone, Copy)]
struct Walker {
    depth: usize,
}

impl Walker {
    /// The walker for the contents of `levels` more JSON containers.
    fn enter(self, levels: usize) -> Result<Walker, WalkError> {
        let depth = self.depth + levels;
        if depth > MAX_DEPTH {
            return Err(WalkError::Json(JsonError::TooDeep {
                depth,
                max: MAX_DEPTH,
            }));
        }
        Ok(Walker { depth })
    }

    fn float(value: f64) -> Result<(), WalkError> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(WalkError::Json(JsonError::NonFiniteNumber))
        }
    }
}

impl ser::Serializer for Walker {
    type Ok = ();
    type Error = WalkError;
    type SerializeSeq = Walker;
    type SerializeTuple = Walker;
    type SerializeTupleStruct = Walker;
    type SerializeTupleVariant = Walker;
    type SerializeMap = Walker;
    type SerializeStruct = Walker;
    type SerializeStructVariant = Walker;

    fn serialize_bool(self, _v: bool) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_i8(self, _v: i8) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_i16(self, _v: i16) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_i32(self, _v: i32) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_i64(self, _v: i64) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_i128(self, _v: i128) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_u8(self, _v: u8) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_u16(self, _v: u16) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_u32(self, _v: u32) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_u64(self, _v: u64) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_u128(self, _v: u128) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), WalkError> {
        Self::float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), WalkError> {
        Self::float(v)
    }
    fn serialize_char(self, _v: char) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_str(self, _v: &str) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), WalkError> {
        self.enter(1).map(drop)
    }
    fn serialize_none(self) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WalkError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        value.serialize(self.enter(1)?)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Walker, WalkError> {
        self.enter(1)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Walker, WalkError> {
        self.enter(1)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Walker, WalkError> {
        self.enter(1)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Walker, WalkError> {
        self.enter(2)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Walker, WalkError> {
        self.enter(1)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Walker, WalkError> {
        self.enter(1)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Walker, WalkError> {
        self.enter(2)
    }
}

impl ser::SerializeSeq for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeTuple for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeMap for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WalkError> {
        key.serialize(*self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeStruct for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Walker {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        value.serialize(*self)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn nested_arrays(depth: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        value
    }

    #[test]
    fn ordinary_values_become_json() {
        assert_eq!(to_storable(&42).unwrap(), json!(42));
        assert_eq!(to_storable("x").unwrap(), json!("x"));
        assert_eq!(to_storable(&vec![1.5, 2.0]).unwrap(), json!([1.5, 2.0]));
        let map: BTreeMap<&str, Option<u8>> = [("a", Some(1)), ("b", None)].into();
        assert_eq!(to_storable(&map).unwrap(), json!({"a": 1, "b": null}));
    }

    #[test]
    fn non_finite_floats_are_refused_instead_of_becoming_null() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = to_storable(&value).unwrap_err();
            assert!(
                matches!(error, Error::Unstorable(JsonError::NonFiniteNumber)),
                "{error:?}"
            );
        }
        let error = to_storable(&vec![vec![1.0, f64::NAN]]).unwrap_err();
        assert!(
            matches!(error, Error::Unstorable(JsonError::NonFiniteNumber)),
            "{error:?}"
        );
    }

    #[test]
    fn nesting_up_to_the_parser_limit_is_accepted_and_beyond_it_refused() {
        assert!(to_storable(&nested_arrays(MAX_DEPTH)).is_ok());
        let error = to_storable(&nested_arrays(MAX_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(error, Error::Unstorable(JsonError::TooDeep { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn an_absurdly_deep_value_is_refused_without_overflowing_the_stack() {
        let deep = nested_arrays(100_000);
        let error = to_storable(&deep).unwrap_err();
        assert!(
            matches!(error, Error::Unstorable(JsonError::TooDeep { .. })),
            "{error:?}"
        );
        // Dropping such a value recursively would overflow the stack too; unwind it by hand.
        let mut value = deep;
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn maps_with_non_string_keys_are_type_errors() {
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let error = to_storable(&map).unwrap_err();
        assert!(matches!(error, Error::Type(_)), "{error:?}");
    }
}
