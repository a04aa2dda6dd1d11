// Moddable's "rng" (from crypt/tls.json): random bytes from the host's cryptographic source.
import { call } from "./host";

const RNG = {
	get(n: number): ArrayBuffer {
		return call("rng.get", n);
	},
};

export default RNG;
