//! Validated names. A value of these types has passed the same rule that
//! Maestro, its agent or Kubernetes would apply, so code that holds one need
//! not check again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is invalid: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub value: String,
    pub reason: String,
}

/// Checks an RFC 1123 label: lower-case alphanumerics and '-', starting and
/// ending alphanumeric, at most 63 characters.
pub fn check_dns1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 63 {
        return Err(format!(
            "must be at most 63 characters, has {}",
            value.len()
        ));
    }
    check_label_chars(value)
}

/// Checks an RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn check_dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 253 {
        return Err(format!(
            "must be at most 253 characters, has {}",
            value.len()
        ));
    }
    value.split('.').try_for_each(check_label_chars)
}

fn check_label_chars(label: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if label.is_empty() || !label.chars().all(ok_char) {
        return Err(
            "must consist of lower case alphanumeric characters or '-' (e.g. 'my-name')".into(),
        );
    }
    if !alnum(label.chars().next()) || !alnum(label.chars().last()) {
        return Err("must start and end with an alphanumeric character".into());
    }
    Ok(())
}

macro_rules! label_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                match check_dns1123_label(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(NameError { kind: $kind, value, reason }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

label_name!(
    /// A Maestro consumer: the target cluster, and the ManifestWork namespace.
    ConsumerName,
    "consumer name"
);

label_name!(
    /// A ManifestWork name. The Go source client requires a DNS-1123 label.
    WorkName,
    "work name"
);

/// The CloudEvents source of this client. Maestro scopes resource IDs,
/// subscriptions and authorization (`/sources/<id>`) by it, and parses it as
/// a URI reference, so it must be non-empty and free of spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceId(String);

impl SourceId {
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        let bad = |reason: &str| NameError {
            kind: "source id",
            value: value.clone(),
            reason: reason.into(),
        };
        if value.is_empty() {
            return Err(bad("must not be empty"));
        }
        if value.len() > 253 {
            return Err(bad("must be at most 253 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/".contains(c))
        {
            return Err(bad(
                "may contain only ASCII letters, digits and '-', '.', '_', '~', ':', '/'",
            ));
        }
        Ok(SourceId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SourceId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for SourceId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<SourceId> for String {
    fn from(n: SourceId) -> String {
        n.0
    }
}

/// The Maestro resource (bundle) ID of a ManifestWork.
///
/// The Go source client derives it so that the same source, consumer and
/// name always give the same ID: a UUID v5 in the OID namespace over
/// `<source>-manifestworks.work.open-cluster-management.io-<consumer>-<name>`.
/// Maestro stores it as the primary key and the agent uses it as the
/// ManifestWork name on the managed cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub Uuid);

const MANIFESTWORKS_GROUP_RESOURCE: &str = "manifestworks.work.open-cluster-management.io";

impl ResourceId {
    pub fn for_work(source: &SourceId, consumer: &str, name: &str) -> ResourceId {
        let key = format!(
            "{}-{MANIFESTWORKS_GROUP_RESOURCE}-{consumer}-{name}",
            source.as_str()
        );
        ResourceId(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lower-case hyphenated: the agent uses it as a Kubernetes name.
        write!(f, "{}", self.0.hyphenated())
    }
}

impl FromStr for ResourceId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ResourceId)
    }
}

#[cfg(test)]
mod tests;
