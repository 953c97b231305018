//! One way to name a service: [`IntoServiceName`].
//!
//! A service name is a [`DnsLabel`] (WIRE.md §2), because it becomes part
//! of a protocol ID (`/peerup/<service>/1.0.0`). Every call that names a
//! service ([`NodeOptions::with_service`](super::NodeOptions::with_service),
//! [`Node::open_service`](super::Node::open_service),
//! [`Node::forward`](super::Node::forward), ...) takes `impl
//! IntoServiceName`, so a caller passes whatever it has, a checked
//! [`DnsLabel`] or a `&str`/`String` from a command line or a config, and
//! an invalid text fails there with an [`InvalidServiceName`] naming it.

use peerup_core::config::LocalAddressError;
use peerup_core::wire::label::{DnsLabel, LabelError};

/// Something that names a service: a [`DnsLabel`] (already valid), or a
/// text checked as one.
pub trait IntoServiceName {
    /// The service name as a DNS label.
    ///
    /// # Errors
    /// [`InvalidServiceName`] when the text is not a DNS label.
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName>;
}

/// A service name that is not a DNS label (1-63 characters of `a-z`,
/// `0-9` and `-`, not starting or ending with `-`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service name {name:?}: {reason}")]
pub struct InvalidServiceName {
    name: String,
    reason: LabelError,
}

impl InvalidServiceName {
    /// The rejected name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &LabelError {
        &self.reason
    }
}

impl IntoServiceName for DnsLabel {
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName> {
        Ok(self)
    }
}

impl IntoServiceName for &DnsLabel {
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName> {
        Ok(self.clone())
    }
}

impl IntoServiceName for &str {
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName> {
        DnsLabel::new(self).map_err(|reason| InvalidServiceName {
            name: self.to_owned(),
            reason,
        })
    }
}

impl IntoServiceName for String {
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName> {
        self.as_str().into_service_name()
    }
}

impl IntoServiceName for &String {
    fn into_service_name(self) -> Result<DnsLabel, InvalidServiceName> {
        self.as_str().into_service_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_names_the_same_service() {
        let label = DnsLabel::new("ssh").unwrap();
        assert_eq!("ssh".into_service_name().unwrap(), label);
        assert_eq!(String::from("ssh").into_service_name().unwrap(), label);
        assert_eq!((&String::from("ssh")).into_service_name().unwrap(), label);
        assert_eq!((&label).into_service_name().unwrap(), label);
        assert_eq!(label.clone().into_service_name().unwrap(), label);
    }

    #[test]
    fn invalid_name_is_named_in_the_error() {
        let e = "My_Service".into_service_name().unwrap_err();
        assert_eq!(e.name(), "My_Service");
        assert!(matches!(e.reason(), LabelError::InvalidChar { .. }));
        assert!(
            e.to_string()
                .starts_with("invalid service name \"My_Service\": "),
            "{e}"
        );
        let e = String::new().into_service_name().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid service name \"\": must not be empty"
        );
    }
}

/// A service that cannot be exposed as given: its name is not a DNS label,
/// or its local address is not a `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidService {
    /// The name.
    #[error(transparent)]
    Name(#[from] InvalidServiceName),
    /// The local address.
    #[error("service `{name}`: invalid local address {address:?}")]
    Address {
        /// The service.
        name: DnsLabel,
        /// The text given.
        address: String,
        /// What is wrong with it.
        #[source]
        source: LocalAddressError,
    },
}
