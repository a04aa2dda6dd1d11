// The Moddable "time" module: ticks are milliseconds of virtual time since power-on.
import { call } from "./host";

const Time = {
	get ticks(): number {
		return call("time.ticks");
	},
};
export default Time;
