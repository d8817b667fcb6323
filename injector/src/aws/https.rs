//! The one HTTPS client of the process: every AWS call (STS, SSM, Secrets Manager, in every
//! region) goes through it, so its connector, and with it the parsed list of trusted
//! certificates, is built once per run.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::atomic::{AtomicBool, Ordering};

/// The SDK's default HTTPS client (rustls on aws-lc, proxies from the environment as the SDK
/// reads them: `HTTPS_PROXY`, `NO_PROXY`, ...) trusting the certificates of `trust`.
pub fn client(trust: TlsContext) -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder =
            Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.tls_context(trust.clone()).build()
    });
    SharedHttpClient::new(BuiltOnUse {
        inner,
        used: AtomicBool::new(false),
    })
}

/// The SDK's client builds a connector, which parses every trusted certificate (about 150 in
/// the image's bundle), each time an SDK client is configured, only to throw it away; and the
/// SDK gives each of its clients a client of its own. Here connectors are built only when a call
/// needs one, and kept by their settings (the inner client's cache): every SDK client of the run
/// has the same timeouts, so there is one.
#[derive(Debug)]
struct BuiltOnUse {
    inner: SharedHttpClient,
    /// Whether a call asked for a connector yet (for `timing`).
    used: AtomicBool,
}

impl HttpClient for BuiltOnUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        if self.used.swap(true, Ordering::Relaxed) {
            return self.inner.http_connector(settings, components);
        }
        crate::timing::mark("first call: building the HTTPS connector");
        let connector = self.inner.http_connector(settings, components);
        crate::timing::mark("HTTPS connector built (trusted certificates parsed)");
        connector
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}
