//! [`Secret`]: a value that must never be printed, logged or serialized.
//!
//! Why a newtype rather than discipline: a `#[derive(Debug)]` on a config struct, a `tracing` field or an
//! error message is all it takes to put an app secret into a log file. `Secret<T>` has a redacting
//! `Debug`, no `Display`, no `Serialize`, and wipes its memory on drop. Reading it is explicit
//! ([`Secret::expose`]), so every use is greppable.
use std::fmt;

use zeroize::Zeroize;

/// A secret value (app secret, API key, APIv3 key, access token…). See the [module docs](self).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the secret. Keep the result out of logs, errors and `Display`.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Secret<String> {
    /// The secret as `&str`.
    pub fn expose_str(&self) -> &str {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret<String> {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Deserializing is allowed (configuration files, environment); serializing is not.
impl<'de, T: Zeroize + serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("appsecret-abcdef");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("abcdef"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(s.expose_str(), "appsecret-abcdef");
    }

    #[test]
    fn deserializes() {
        let s: Secret<String> = serde_json::from_str("\"k\"").expect("json");
        assert_eq!(s.expose_str(), "k");
    }
}
