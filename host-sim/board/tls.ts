/*
	The board's TLS, as Moddable's SecureSocket behaves on the device: TLS 1.2 only, trust only in the CA
	certificate the device passes (no built-in store: an app that ships no CA trusts nothing), the server's
	name checked against the name the device connects to, and the client certificate and PKCS#8 key it passes.
	A handshake that fails is given the reason the device reports (lib/tls-failure.ts).
*/

import { X509Certificate, createPrivateKey } from "node:crypto";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { tlsReasons } from "../../src/lib/tls-failure";
import type { SecureSpec } from "../modules/secure-spec";

export type { SecureSpec };

/** Node's options for a connection the device asked for with `spec`, or the reason it cannot be made. */
export function connectOptions(spec: SecureSpec, host: string, port: number): tls.ConnectionOptions | string {
	if (!spec.ca) return tlsReasons.noTrustAnchor;
	const serverName = spec.serverName ?? host;
	const options: tls.ConnectionOptions = {
		host, port,
		minVersion: "TLSv1.2", maxVersion: "TLSv1.2",
		rejectUnauthorized: true,
		checkServerIdentity: (_name, certificate) => tls.checkServerIdentity(serverName, certificate),
		ALPNProtocols: spec.alpn,
	};
	// SNI carries host names only (RFC 6066).
	if (!isIP(serverName)) options.servername = serverName;
	try {
		options.ca = [pem(spec.ca)];
	}
	catch {
		return tlsReasons.noTrustAnchor;
	}
	if (spec.cert && spec.key) {
		try {
			options.cert = pem(spec.cert);
			options.key = createPrivateKey({ key: Buffer.from(spec.key, "hex"), format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" });
			tls.createSecureContext({ cert: options.cert, key: options.key });
		}
		catch {
			return tlsReasons.badCredentials;
		}
	}
	return options;
}

function pem(hex: string): string {
	return new X509Certificate(Buffer.from(hex, "hex")).toString();
}

const notTrusted: { [code: string]: boolean } = {
	SELF_SIGNED_CERT_IN_CHAIN: true, DEPTH_ZERO_SELF_SIGNED_CERT: true, UNABLE_TO_GET_ISSUER_CERT_LOCALLY: true,
	UNABLE_TO_GET_ISSUER_CERT: true, CERT_SIGNATURE_FAILURE: true, CERT_UNTRUSTED: true, CERT_REJECTED: true, INVALID_CA: true,
};

/**
	The reason a handshake failed, from Node's error; undefined when it was no TLS failure (a reset, a refusal).
	`mutual`: a connection where the server may ask for the client's certificate (MQTT), `sent` whether it had one.
*/
export function tlsFailure(error: NodeJS.ErrnoException, client: { mutual: boolean; sent: boolean }): string | undefined {
	const code = error.code ?? "";
	if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return tlsReasons.nameMismatch;
	if (code === "CERT_HAS_EXPIRED") return tlsReasons.expired;
	if (code === "CERT_NOT_YET_VALID") return tlsReasons.notYetValid;
	// The leaf's issuer is neither sent nor trusted: most often a server that sends no chain.
	if (code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE") return tlsReasons.chainIncomplete;
	if (notTrusted[code]) return tlsReasons.notTrusted;
	const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code)?.[1];
	if (alert) {
		// The server ended the handshake: on MQTT, over the client's certificate (TLS 1.2 says handshake_failure
		// for a missing one).
		if (client.mutual && /^(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)$/.test(alert) && !client.sent) return tlsReasons.clientCertificateRequired;
		if (client.mutual && /^(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ACCESS_DENIED|DECRYPT_ERROR|CERTIFICATE_EXPIRED)$/.test(alert))
			return tlsReasons.clientCertificateRefused;
		return `${tlsReasons.handshakeFailed} (${alert.toLowerCase()})`;
	}
	if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) return `${tlsReasons.handshakeFailed} (${code})`;
	return undefined;
}
