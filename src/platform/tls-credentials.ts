/*
	Device trust and identity for TLS: the `secure` dictionary Moddable's SecureSocket takes, built from DER
	credentials the app ships or a provisioning step stored. Each credential is looked up when a connection
	opens (never while modules link), first found wins:
	  1. the preference store, domain "xs-ota-tls", keys "ca", "mqtt-ca", "cert", "key" (one device's identity,
	     written once at provisioning: Preference.set("xs-ota-tls", "cert", der));
	  2. a resource built into the app (manifest "resources"): xs-ota-ca.der, xs-ota-mqtt-ca.der,
	     xs-ota-cert.der, xs-ota-key.der.
	"psk-identity" and "psk-key" are the DTLS pre-shared key (coaps://, src/dtls): the identity's bytes as the
	server knows them, the key's raw bytes.
	"ca" is the trust anchor for package servers; "mqtt-ca" the broker's (Amazon Root CA 1 for AWS IoT Core),
	"ca" when absent. "cert" and "key" (PKCS#8) are the client identity MQTT presents. Keys are never logged.
	Moddable's TLS signs the client's CertificateVerify with RSA (PKCS#1 v1.5) only: any other key would fail
	every handshake without a word, so it is refused before connecting ("tls: client key must be rsa").

	A secure connection that fails reports a reason beginning "tls: " (lib/tls-failure.ts).
*/

import Preference from "preference";
import Resource from "Resource";
import { isTlsFailure, tlsReasons } from "../lib/tls-failure";
import { isRsaKey } from "../lib/pkcs8";

export const tlsDomain = "xs-ota-tls";
export type CredentialName = "ca" | "mqtt-ca" | "cert" | "key" | "psk-identity" | "psk-key";
/** The ALPN protocol AWS IoT Core needs for MQTT with a client certificate on port 443. */
export const awsMqttAlpn = "x-amzn-mqtt-ca";
/** SecureSocket's highest version: TLS 1.2. */
const tls12 = 0x303;

export type SecureOptions = {
	protocolVersion: number;
	serverName: string;
	certificate?: ArrayBuffer;
	clientCertificates?: ArrayBuffer[];
	clientKey?: ArrayBuffer;
	applicationLayerProtocolNegotiation?: string[];
};

export function credential(name: CredentialName): ArrayBuffer | undefined {
	const stored = Preference.get(tlsDomain, name);
	if (stored instanceof ArrayBuffer && stored.byteLength) return stored;
	const resource = `xs-ota-${name}.der`;
	return Resource.exists(resource) ? new Resource(resource) : undefined;
}

/** Options for a server `host`; mqtt adds the client identity and, when asked, ALPN. */
export function secureOptions(host: string, mqtt?: { alpn: string }): SecureOptions {
	const options: SecureOptions = { protocolVersion: tls12, serverName: host };
	const ca = (mqtt && credential("mqtt-ca")) || credential("ca");
	if (ca) options.certificate = ca;
	if (mqtt) {
		const cert = credential("cert"), key = credential("key");
		if (cert && key) {
			if (!isRsaKey(new Uint8Array(key))) throw new Error(tlsReasons.clientKeyNotRsa);
			options.clientCertificates = [cert];
			options.clientKey = key;
		}
		if (mqtt.alpn) options.applicationLayerProtocolNegotiation = [mqtt.alpn];
	}
	return options;
}

/** The DTLS pre-shared key, when both halves are provisioned. */
export function pskCredentials(): { identity: Uint8Array; key: Uint8Array } | undefined {
	const identity = credential("psk-identity"), key = credential("psk-key");
	return identity && key ? { identity: new Uint8Array(identity), key: new Uint8Array(key) } : undefined;
}

/**
	The reason for a secure connection's failure. The simulator's sockets give it; Moddable's SecureSocket
	only traces it and throws from its constructor for a bad trust anchor ("date validation failed").
*/
export function tlsFailureReason(detail: unknown, fallback: string): string {
	if (typeof detail === "string" && isTlsFailure(detail)) return detail;
	if (detail instanceof Error) {
		if (isTlsFailure(detail.message)) return detail.message;
		if (/date validation/.test(detail.message)) return tlsReasons.expired;
		if (/resource/i.test(detail.message)) return tlsReasons.noTrustAnchor;
		return `${tlsReasons.handshakeFailed}: ${detail.message}`;
	}
	return fallback;
}
