// The Moddable "net" module: the station's IP address (empty while the simulated board is offline), and
// resolve(), answered later as an event like the device's DNS look-up.
import { call, listen, unlisten } from "./host";

const Net = {
	get(what: string): string | undefined {
		return what === "IP" ? call("net.ip") : undefined;
	},
	resolve(host: string, callback: (name: string, address: string | undefined) => void): void {
		const id: number = call("net.resolve", host);
		listen(id, (event: { address?: string }) => {
			unlisten(id);
			callback(host, event.address ?? undefined);
		});
	},
};
export default Net;
