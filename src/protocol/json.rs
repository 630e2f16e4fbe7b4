//! A JSON value that borrows its strings from the message text: what a protocol
//! decodes a message's body into, and what the structure normaliser walks.

use std::borrow::Cow;

use crate::protocol::DISCRIMINATORS;

/// A JSON value that borrows its strings from the message text where it can: parsing
/// into it allocates far less than `serde_json::Value` (the normaliser's hot path).
#[derive(Debug)]
pub enum J<'a> {
    Null,
    Bool,
    Int(f64),
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    pub fn parse(text: &'a str) -> Option<J<'a>> {
        serde_json::from_str(text).ok()
    }

    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The message's label: its discriminator value or its JSON kind (as
    /// [`protocol::label_of_json`] names them).
    pub fn label(&self) -> Cow<'_, str> {
        let discriminator = DISCRIMINATORS.iter().find_map(|k| match self.get(k) {
            Some(J::Str(s)) => Some(s.as_ref()),
            _ => None,
        });
        match (discriminator, self) {
            (Some(d), _) => Cow::Borrowed(d),
            (None, J::Obj(_)) => "(json object)".into(),
            (None, J::Arr(_)) => "(json array)".into(),
            (None, _) => "(json value)".into(),
        }
    }
}

/// A string that borrows from the input when it has no escapes.
pub(crate) struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(JVisitor).and_then(|j| match j {
            J::Str(s) => Ok(BorrowedStr(s)),
            _ => Err(serde::de::Error::custom("expected a string")),
        })
    }
}

impl<'de> serde::Deserialize<'de> for J<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

pub(crate) struct JVisitor;

impl<'de> serde::de::Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<J<'de>, E> {
        Ok(J::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<J<'de>, E> {
        Ok(J::Int(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J<'de>, E> {
        Ok(J::Int(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J<'de>, E> {
        Ok(J::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((BorrowedStr(k), v)) = map.next_entry::<BorrowedStr<'de>, J<'de>>()? {
            fields.push((k, v));
        }
        Ok(J::Obj(fields))
    }
}
