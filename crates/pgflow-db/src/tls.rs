//! TLS for database URLs: `sslmode` and `sslrootcert` the way libpq reads
//! them, for the installer's tokio-postgres connection (sqlx, used
//! everywhere else, reads them itself). Advice for TLS failures is
//! [`crate::error::tls_hint`].
//!
//! | `sslmode`           | encrypts     | checks the chain | checks the host name |
//! |---------------------|--------------|------------------|----------------------|
//! | `disable`           | no           | -                | -                    |
//! | `allow`, `prefer`   | if offered   | no               | no                   |
//! | `require`           | yes          | only with `sslrootcert` | no            |
//! | `verify-ca`         | yes          | yes              | no                   |
//! | `verify-full`       | yes          | yes              | yes                  |
//!
//! Without `sslrootcert` the chain is checked against the public web roots
//! (what managed services' certificates chain to).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::SslMode as PgSslMode;

use crate::error::redact_url;
use crate::DbError;

/// Query parameters this module reads and takes out of the URL before
/// tokio-postgres (which knows none of them but `sslmode`) parses it.
const TLS_PARAMS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never encrypt.
    Disable,
    /// Encrypt if the server offers it (libpq's `allow`, treated as `prefer`).
    Allow,
    /// Encrypt if the server offers it; the default.
    Prefer,
    /// Always encrypt; verify the chain only when `sslrootcert` is given.
    Require,
    /// Always encrypt and verify the chain, not the host name.
    VerifyCa,
    /// Always encrypt, verify the chain and the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// The TLS settings of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode` (default `prefer`, as libpq).
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of CA certificates.
    pub root_cert: Option<String>,
}

/// Reads `sslmode` and `sslrootcert` from `url`, rejecting values no
/// connection could honour: an unknown `sslmode`, client certificates
/// (`sslcert`/`sslkey`, not supported), an `sslrootcert` with `disable`.
/// Returns the settings and the URL without those parameters.
pub fn parse_url(url: &str) -> Result<(TlsSettings, String), DbError> {
    let invalid = |reason: String| DbError::InvalidUrl {
        url: redact_url(url),
        reason,
    };
    let mut parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "sslmode" => {
                mode = SslMode::parse(&value).ok_or_else(|| {
                    invalid(format!(
                        "unsupported sslmode `{value}`; use disable, allow, prefer, require, \
                         verify-ca or verify-full"
                    ))
                })?
            }
            "sslrootcert" => root_cert = Some(value.into_owned()),
            "sslcert" | "sslkey" => {
                return Err(invalid(format!(
                    "`{key}`: client certificates are not supported; authenticate with a password"
                )))
            }
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    if root_cert.is_some() && mode == SslMode::Disable {
        return Err(invalid(
            "sslrootcert is given but sslmode=disable turns TLS off".to_string(),
        ));
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    debug_assert!(TLS_PARAMS.iter().all(|p| !parsed.as_str().contains(p)));
    Ok((TlsSettings { mode, root_cert }, parsed.into()))
}

/// Connects tokio-postgres to `url` honouring its TLS settings, and drives
/// the connection on a task.
pub(crate) async fn connect_tokio_postgres(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let (settings, stripped) = parse_url(url)?;
    let mut config: tokio_postgres::Config =
        stripped
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::InvalidUrl {
                url: redact_url(url),
                reason: e.to_string(),
            })?;
    config.ssl_mode(match settings.mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(&settings, url)?);
    let (client, connection) = config.connect(tls).await.map_err(|e| DbError::Connect {
        url: redact_url(url),
        source: Box::new(e),
    })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "installer connection closed with an error");
        }
    });
    Ok(client)
}

/// The rustls configuration for `settings`.
fn client_config(settings: &TlsSettings, url: &str) -> Result<ClientConfig, DbError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |reason: String| DbError::InvalidUrl {
        url: redact_url(url),
        reason,
    };
    let roots = match &settings.root_cert {
        Some(path) => Some(load_roots(path).map_err(tls_error)?),
        None if matches!(settings.mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
            Some(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        }
        None => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(AcceptAny(Arc::clone(&provider))),
        Some(roots) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| tls_error(format!("sslrootcert: {e}")))?;
            if settings.mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The CA certificates in the PEM file at `path`.
fn load_roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert {path}: cannot read it: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {path}: no certificate in it"));
    }
    Ok(roots)
}

/// `prefer`/`require` without a CA: encrypts, trusts any certificate (as
/// libpq does), but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

/// `verify-ca` (and `require` with `sslrootcert`): the chain must lead to
/// a given CA, the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means
        // the chain was fine.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_tls_params_are_read_and_removed() {
        let (s, rest) = parse_url(
            "postgres://u:p@db/app?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(rest, "postgres://u:p@db/app?application_name=x");
        let (s, rest) = parse_url("postgres://db/app").unwrap();
        assert_eq!(s.mode, SslMode::Prefer);
        assert_eq!(rest, "postgres://db/app");
    }

    #[test]
    fn bad_tls_params_are_clear_errors() {
        let err = parse_url("postgres://u:secret@db/app?sslmode=verify").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unsupported sslmode `verify`"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let err = parse_url("postgres://db/app?sslmode=disable&sslrootcert=/ca").unwrap_err();
        assert!(err.to_string().contains("sslmode=disable"), "{err}");
        let err = parse_url("postgres://db/app?sslcert=/c").unwrap_err();
        assert!(err.to_string().contains("client certificates"), "{err}");
    }
}
