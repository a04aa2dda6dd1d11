// SecureSocket's `secure` dictionary as the board's sockets take it: DER as hex, so it crosses either engine's
// bridge as JSON. Only what the device passes is carried: a socket given a `secure` dictionary is TLS.

type Der = ArrayBuffer | ArrayBufferView;

export interface SecureDictionary {
	serverName?: string;
	certificate?: Der;
	clientCertificates?: Der[];
	clientKey?: Der;
	applicationLayerProtocolNegotiation?: string | string[];
	protocolVersion?: number;
}

export interface SecureSpec {
	serverName?: string;
	ca?: string;
	cert?: string;
	key?: string;
	alpn?: string[];
}

function hex(der: Der): string {
	const bytes = der instanceof ArrayBuffer ? new Uint8Array(der) : new Uint8Array(der.buffer, der.byteOffset, der.byteLength);
	let text = "";
	for (let i = 0; i < bytes.length; i++) text += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
	return text;
}

export function secureSpec(secure: SecureDictionary): SecureSpec {
	if (secure.protocolVersion !== undefined && (secure.protocolVersion < 0x301 || secure.protocolVersion > 0x303))
		throw new Error("SSL: protocolVersion: not supported");
	const alpn = secure.applicationLayerProtocolNegotiation;
	return {
		serverName: secure.serverName,
		ca: secure.certificate ? hex(secure.certificate) : undefined,
		cert: secure.clientCertificates?.[0] ? hex(secure.clientCertificates[0]) : undefined,
		key: secure.clientKey ? hex(secure.clientKey) : undefined,
		alpn: alpn === undefined ? undefined : typeof alpn === "string" ? alpn.split(":") : alpn,
	};
}
