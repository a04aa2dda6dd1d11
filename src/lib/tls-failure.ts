// Why a secure connection failed, as every platform reports it: a reason beginning "tls: ". The transports
// treat these as permanent after a few tries, since the same server fails the same handshake again.

export const tlsReasons = {
	noTrustAnchor: "tls: no trusted ca certificate",
	notTrusted: "tls: certificate not trusted",
	chainIncomplete: "tls: chain incomplete",
	nameMismatch: "tls: name mismatch",
	expired: "tls: certificate expired",
	notYetValid: "tls: certificate not yet valid",
	clientCertificateRequired: "tls: client certificate required",
	clientCertificateRefused: "tls: client certificate refused",
	badCredentials: "tls: bad client credentials",
	clientKeyNotRsa: "tls: client key must be rsa",
	handshakeFailed: "tls: handshake failed",
} as const;

export function isTlsFailure(reason: string): boolean {
	return reason.startsWith("tls: ");
}

/** Why a DTLS session (src/dtls) failed. A timeout may pass by itself; the others fail the same way again. */
export const dtlsReasons = {
	badPsk: "dtls: bad psk",
	unknownIdentity: "dtls: unknown psk identity",
	noPsk: "dtls: no psk provisioned",
	handshakeTimeout: "dtls: handshake timeout",
	refused: "dtls: handshake refused",
	unsupported: "dtls: server chose what we did not offer",
	certificateWanted: "dtls: server wants a certificate",
	closed: "dtls: closed by server",
	malformed: "dtls: malformed handshake",
} as const;

/** A DTLS failure that trying again will not cure. */
export function isPermanentDtlsFailure(reason: string): boolean {
	return reason.startsWith("dtls: ") && reason !== dtlsReasons.handshakeTimeout && reason !== dtlsReasons.closed;
}
