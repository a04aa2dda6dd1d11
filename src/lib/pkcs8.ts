// Just enough of a PKCS#8 private key (RFC 5208) to tell its algorithm, without parsing the key itself.

/** rsaEncryption, 1.2.840.113549.1.1.1, as DER: the OID of a PKCS#8 RSA key's algorithm. */
const rsaOid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/** Whether PKCS#8 DER `key` (SEQUENCE { INTEGER version, SEQUENCE { OID, … }, OCTET STRING }) holds an RSA key. */
export function isRsaKey(key: Uint8Array): boolean {
	let at = 0;
	const header = (tag: number): boolean => {
		if (key[at++] !== tag) return false;
		const first = key[at++];
		at += first & 0x80 ? first & 0x7f : 0;
		return at <= key.length;
	};
	if (!header(0x30) || !header(0x02)) return false;
	at += key[at - 1];
	if (!header(0x30)) return false;
	for (let i = 0; i < rsaOid.length; i++)
		if (key[at + i] !== rsaOid[i]) return false;
	return true;
}
