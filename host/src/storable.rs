//! Turning application values into session values that are sure to load back: the codec's
//! bounded walk ([`sessionkit_codec::json::to_storable_value`]) with the host's error type.

use serde::Serialize;
use serde_json::Value;
use sessionkit_codec::json::{ToValueError, to_storable_value};

use crate::Error;

/// `value` as a session value, or why it cannot be stored.
///
/// # Errors
///
/// [`Error::Unstorable`] for nesting deeper than the codec's `MAX_DEPTH` or a non-finite float;
/// [`Error::Type`] for a value JSON cannot represent (a map with non-string keys, ...).
pub(crate) fn to_storable<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    to_storable_value(value).map_err(|error| match error {
        ToValueError::Unstorable(error) => Error::Unstorable(error),
        ToValueError::Serialize(error) => Error::Type(error),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use sessionkit_codec::json::{JsonError, MAX_DEPTH};

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
