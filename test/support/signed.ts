// The signed-image test keys (test/fixtures/signed/README.md says how they were made).

import * as fs from "node:fs";
import * as path from "node:path";

export const fixtures = path.join(import.meta.dirname, "..", "fixtures", "signed");
export const rsaKey = fs.readFileSync(path.join(fixtures, "rsa3072-test-key.pem"));
export const ecKey = fs.readFileSync(path.join(fixtures, "p256-test-key.pem"));
/** Trusted by no board unless a test says so. */
export const otherKey = fs.readFileSync(path.join(fixtures, "p256-other-test-key.pem"));

/** A key digest as config.trustedKeys and config.revokedKeys take it. */
export const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
