// The Moddable "net" module: the station's IP address, empty while the simulated board is offline.
import { call } from "./host";

const Net = {
	get(what: string): string | undefined {
		return what === "IP" ? call("net.ip") : undefined;
	},
};
export default Net;
