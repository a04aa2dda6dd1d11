// TLS for the local servers (update server, aedes broker): a certificate chain and key in PEM files, and for
// MQTT the CA that client certificates must chain to, the way AWS IoT Core asks every device for one.
import { readFileSync } from "node:fs";
import type { TlsOptions } from "node:tls";

export interface ServerTls {
	/** PEM: the server certificate, followed by its chain (a server must send it: devices check the chain). */
	certPem: string;
	keyPem: string;
	/** PEM: the CA client certificates must chain to; with it, a client without a valid certificate is refused. */
	clientCaPem?: string;
	/** ALPN protocols offered (AWS IoT Core: "x-amzn-mqtt-ca" on port 443). */
	alpn?: string[];
}

export function serverTlsOptions(tls: ServerTls): TlsOptions {
	const clientCa = tls.clientCaPem ? readFileSync(tls.clientCaPem) : undefined;
	return {
		cert: readFileSync(tls.certPem),
		key: readFileSync(tls.keyPem),
		ca: clientCa,
		requestCert: clientCa !== undefined,
		rejectUnauthorized: clientCa !== undefined,
		ALPNProtocols: tls.alpn,
		minVersion: "TLSv1.2",
	};
}
