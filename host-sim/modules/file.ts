// The Moddable "file" module, the part the agent uses: the host's files (the reboot warning file).
import { call } from "./host";

export class File {
	static exists(path: string): boolean {
		return call("file.exists", path) === true;
	}

	static delete(path: string): boolean {
		return call("file.delete", path) === true;
	}
}
