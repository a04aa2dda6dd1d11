// A throwaway test PKI made with the openssl command line: a root and an intermediate CA, server leaves good,
// misnamed and expired, a second unrelated root with its own server, and client certificates from each side.
// Keys are EC P-256 with SHA-256 signatures, except the clients': RSA-2048, the only kind Moddable's TLS
// can sign a client's CertificateVerify with (as AWS IoT's generated device certificates are).

import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const openssl = "/usr/bin/openssl";

export interface PkiCert {
	/** Path of the certificate, PEM. */
	certPem: string;
	/** Path of the private key, PKCS#8 PEM. */
	keyPem: string;
	certDer: Uint8Array;
	/** The private key as PKCS#8 DER. */
	keyDer: Uint8Array;
	/** Path of what a peer sends: the leaf and the intermediate, or the certificate alone when a root signed it. */
	chainPem: string;
}

export interface Pki {
	dir: string;
	root: PkiCert;
	intermediate: PkiCert;
	/** localhost and 127.0.0.1, signed by the intermediate. */
	server: PkiCert;
	/** other.example only, signed by the intermediate. */
	wrongName: PkiCert;
	/** Named like server, valid from 2020-01-01 to 2021-01-01 only. */
	expired: PkiCert;
	otherRoot: PkiCert;
	/** localhost and 127.0.0.1, signed by otherRoot directly. */
	otherServer: PkiCert;
	/** CN xs-ota-test-thing, RSA, signed by the intermediate. */
	client: PkiCert;
	/** RSA, signed by otherRoot directly. */
	otherClient: PkiCert;
	/** An EC P-256 client, signed by the intermediate: a key Moddable's TLS cannot sign with. */
	ecClient: PkiCert;
	/** Removes dir. */
	close(): void;
}

// Every section names its own extensions, so nothing comes from the system's openssl.cnf.
const config = `[req]
distinguished_name = dn
[dn]
[ca]
default_ca = backdating
[backdating]
database = index.txt
new_certs_dir = .
default_md = sha256
rand_serial = yes
policy = anyName
unique_subject = no
[anyName]
commonName = supplied
[rootCa]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[intermediateCa]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
[wrongName]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.example
[client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Creates the PKI in a new xs-ota-pki-* folder under parent (the system temp folder by default). */
export function makePki(parent: string = os.tmpdir()): Pki {
	const dir = fs.mkdtempSync(path.join(parent, "xs-ota-pki-"));
	try {
		return generate(dir);
	} catch (error) {
		fs.rmSync(dir, { recursive: true, force: true });
		throw error;
	}
}

function generate(dir: string): Pki {
	const at = (name: string) => path.join(dir, name);
	fs.writeFileSync(at("openssl.cnf"), config);
	const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: "pipe" });
	const newKey = (name: string, rsa = false) =>
		[...(rsa ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]), "-noenc", "-keyout", at(`${name}.key`)];

	// One openssl run per certificate: req makes the key and, with -CA, signs the certificate right away.
	const issue = (name: string, subject: string, extensions: string, issuer?: PkiCert, chain: PkiCert[] = [], rsa = false): PkiCert => {
		const signer = issuer ? ["-CA", issuer.certPem, "-CAkey", issuer.keyPem] : [];
		run(["req", "-x509", "-config", "openssl.cnf", "-extensions", extensions, "-subj", subject, "-days", "3650",
			"-sha256", ...newKey(name, rsa), ...signer, "-out", at(`${name}.pem`)]);
		return load(dir, name, chain);
	};

	const root = issue("root", "/CN=xs-ota test root", "rootCa");
	const intermediate = issue("intermediate", "/CN=xs-ota test intermediate", "intermediateCa", root);
	const otherRoot = issue("other-root", "/CN=xs-ota other root", "rootCa");

	// This openssl (3.0) has no -not_before for req or x509; only ca sets dates in the past, from a request.
	fs.writeFileSync(at("index.txt"), "");
	run(["req", "-new", "-config", "openssl.cnf", "-subj", "/CN=localhost", ...newKey("expired"), "-out", at("expired.csr")]);
	run(["ca", "-batch", "-config", "openssl.cnf", "-notext", "-extensions", "server",
		"-cert", intermediate.certPem, "-keyfile", intermediate.keyPem, "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
		"-in", at("expired.csr"), "-out", at("expired.pem")]);

	return {
		dir,
		root,
		intermediate,
		server: issue("server", "/CN=localhost", "server", intermediate, [intermediate]),
		wrongName: issue("wrong-name", "/CN=other.example", "wrongName", intermediate, [intermediate]),
		expired: load(dir, "expired", [intermediate]),
		otherRoot,
		otherServer: issue("other-server", "/CN=localhost", "server", otherRoot),
		client: issue("client", "/CN=xs-ota-test-thing", "client", intermediate, [intermediate], true),
		otherClient: issue("other-client", "/CN=xs-ota-other-thing", "client", otherRoot, [], true),
		ecClient: issue("ec-client", "/CN=xs-ota-ec-thing", "client", intermediate, [intermediate]),
		close: () => fs.rmSync(dir, { recursive: true, force: true }),
	};
}

// Reads back what openssl wrote and adds the chain file; the DER copies get their own ArrayBuffer, since a
// pooled Buffer's .buffer would also hold unrelated bytes.
function load(dir: string, name: string, chain: PkiCert[]): PkiCert {
	const certPem = path.join(dir, `${name}.pem`);
	const keyPem = path.join(dir, `${name}.key`);
	const pem = fs.readFileSync(certPem, "utf8");
	let chainPem = certPem;
	if (chain.length) {
		chainPem = path.join(dir, `${name}-chain.pem`);
		fs.writeFileSync(chainPem, [pem, ...chain.map((cert) => fs.readFileSync(cert.certPem, "utf8"))].join(""));
	}
	return {
		certPem,
		keyPem,
		certDer: new Uint8Array(new X509Certificate(pem).raw),
		keyDer: new Uint8Array(createPrivateKey(fs.readFileSync(keyPem)).export({ format: "der", type: "pkcs8" })),
		chainPem,
	};
}
