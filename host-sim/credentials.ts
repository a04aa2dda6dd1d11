/*
	A simulated board's TLS credentials, put where the device looks for them (src/platform/tls-credentials.ts):
	  built into the app: the board folder's resources/xs-ota-<name>.der (a manifest's "resources");
	  provisioned: the board's NVS, domain "xs-ota-tls" (a factory provisioning step's Preference.set).
	Files may be PEM or DER; the device gets DER, keys as PKCS#8.
*/

import { X509Certificate, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BoardStorage } from "./board/board-files";
import { resourcesFolder } from "./board/board";
import { PowerSupply } from "./board/power";

/** The names src/platform/tls-credentials.ts looks up. */
export type Credentials = {
	ca?: Uint8Array; "mqtt-ca"?: Uint8Array; cert?: Uint8Array; key?: Uint8Array; "psk-identity"?: Uint8Array; "psk-key"?: Uint8Array;
};

const tlsDomain = "xs-ota-tls";

/** A certificate file (PEM or DER) as DER. */
export function certificateDer(file: string): Uint8Array {
	return new Uint8Array(new X509Certificate(fs.readFileSync(file)).raw);
}

/** A private key file (PEM or DER; PKCS#8, SEC1 or PKCS#1) as PKCS#8 DER. */
export function privateKeyDer(file: string): Uint8Array {
	const bytes = fs.readFileSync(file);
	const pem = bytes.includes("-----BEGIN");
	const key = pem ? createPrivateKey(bytes) : createPrivateKey({ key: bytes, format: "der", type: "pkcs8" });
	return new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
}

/** Builds the credentials into the board's app, as resources. */
export function installResources(dir: string, credentials: Credentials): void {
	const folder = path.join(dir, resourcesFolder);
	fs.mkdirSync(folder, { recursive: true });
	for (const [name, der] of Object.entries(credentials)) if (der) fs.writeFileSync(path.join(folder, `xs-ota-${name}.der`), der);
}

/** Writes the credentials into the board's preference store, as a provisioning step would (once: unchanged ones are left). */
export function provision(dir: string, credentials: Credentials): void {
	const storage = BoardStorage.open(dir, new PowerSupply());
	for (const [name, der] of Object.entries(credentials)) {
		if (!der) continue;
		const stored = storage.nvs.get(tlsDomain, name);
		if (stored instanceof ArrayBuffer && Buffer.from(stored).equals(der)) continue;
		storage.nvs.set(tlsDomain, name, der.slice().buffer);
	}
}
