//! The bounded walk behind [`to_storable_value`](crate::json::to_storable_value).
//!
//! `serde_json::to_value` writes NaN and infinities as `null` (silently changing the value) and
//! recurses without limit (a 100,000-deep value overflows the stack). Walking the value's
//! `Serialize` impl first, counting JSON nesting and looking at every float, catches both before
//! `to_value` runs.

use std::fmt;

use serde::{Serialize, ser};

use crate::json::{JsonError, MAX_DEPTH};

#[derive(Debug)]
pub(crate) enum WalkError {
    /// The value is too deep or holds a non-finite float.
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
pub(crate) struct Walker {
    pub(crate) depth: usize,
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
