// The Moddable "Resource" module: data built into the app, here the files in the board's resources folder
// (what `xs-ota device --ca/--client-cert/--client-key` put there, as a manifest's "resources" would).
import { call } from "./host";

interface ResourceClass {
	new (path: string): ArrayBuffer;
	exists(path: string): boolean;
}

// Moddable's constructor gives a read-only buffer over flash; a copy reads the same.
const Resource = function (path: string): ArrayBuffer {
	const bytes: ArrayBuffer | null = call("resource.read", path);
	if (!bytes) throw new Error(`resource not found: ${path}`);
	return bytes;
} as unknown as ResourceClass;

Resource.exists = (path: string): boolean => call("resource.read", path) !== null;

export default Resource;
