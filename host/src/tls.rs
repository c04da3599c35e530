//! The files a TLS or token setting names: PEM certificates and keys, the rustls configs
//! built from them, and secrets read from files.
//!
//! Shared by the http output (the client side) and the data API's TCP listener (the server
//! side), so both read these files the same way and report a bad one the same way: the
//! field, the path and what is wrong. A secret's contents never appear in an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A file named by a TLS or token setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {}: {problem}", path.display())]
pub struct TlsFileError {
    /// The setting, relative to its section (`tls.cert_file`).
    pub field: String,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

fn file_error(field: &str, path: &Path, problem: impl ToString) -> TlsFileError {
    TlsFileError {
        field: field.to_string(),
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// The PEM certificates in `path` (the value of `field`); at least one.
///
/// # Errors
/// [`TlsFileError`] when the file cannot be read, is not PEM, or holds no certificate.
pub fn load_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(field, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(field, path, e))?;
    if certs.is_empty() {
        return Err(file_error(field, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The PEM private key in `path` (the value of `field`).
///
/// # Errors
/// [`TlsFileError`] when the file cannot be read or holds no private key.
pub fn load_key(field: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(field, path, e))
}

/// The secret in `path` (the value of `field`), without surrounding whitespace.
///
/// # Errors
/// [`TlsFileError`] when the file cannot be read or holds only whitespace.
pub fn read_secret(field: &str, path: &Path) -> Result<String, TlsFileError> {
    let secret = std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| file_error(field, path, e))?;
    if secret.is_empty() {
        return Err(file_error(
            field,
            path,
            "is empty; write the secret into it",
        ));
    }
    Ok(secret)
}

/// The ring crypto provider every config here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting the chain in `cert` with the key in `key`; the fields name
/// the settings in errors.
///
/// # Errors
/// [`TlsFileError`] naming the file that cannot be read or parsed, or the key when it does
/// not fit the certificate.
pub fn server_config(
    (cert_field, cert): (&str, &Path),
    (key_field, key): (&str, &Path),
) -> Result<rustls::ServerConfig, TlsFileError> {
    let chain = load_certs(cert_field, cert)?;
    let key_der = load_key(key_field, key)?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| file_error(cert_field, cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| file_error(key_field, key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_is_refused_without_showing_contents() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("token");
        std::fs::write(&path, " \n")?;
        let error = read_secret("token_file", &path)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error,
            Some(format!(
                "token_file {}: is empty; write the secret into it",
                path.display()
            ))
        );
        std::fs::write(&path, "s3cret\n")?;
        assert_eq!(
            read_secret("token_file", &path).ok().as_deref(),
            Some("s3cret")
        );
        Ok(())
    }

    #[test]
    fn a_file_that_is_not_pem_names_the_field() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, "not a certificate")?;
        let error = load_certs("tls.cert_file", &path).err();
        assert_eq!(
            error.map(|e| (e.field, e.problem)),
            Some((
                "tls.cert_file".to_string(),
                "no PEM certificate in it".to_string()
            ))
        );
        Ok(())
    }
}
