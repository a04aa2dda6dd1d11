// Whether the device has a network connection: an IP address on the station interface, from Moddable's
// "net" module (modules/network/net, typings/net.d.ts), not Node's.

import Net from "net";

export function online(): boolean {
	const address = Net.get("IP");
	return typeof address === "string" && address !== "" && address !== "0.0.0.0";
}
