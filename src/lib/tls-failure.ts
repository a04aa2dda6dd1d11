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
