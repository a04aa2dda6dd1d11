// Inside the engine: the one door to the simulated board. Every Moddable module emulated here calls the
// board through hostCall (direct in the Node engine, issueCommand in xsnap) and receives its callbacks
// through the events the board queues (timers, sockets), dispatched by listener id.

type HostReply = unknown;
declare const hostCall: (op: string, args: unknown[], data?: ArrayBuffer | ArrayBufferView) => HostReply;

export function call(op: string, ...args: unknown[]): any {
	return hostCall(op, args);
}

export function callWithData(op: string, data: ArrayBuffer | ArrayBufferView, ...args: unknown[]): any {
	return hostCall(op, args, data);
}

export type EventListener = (event: any, data: ArrayBuffer | undefined) => void;

const listeners = new Map<number, EventListener>();

export function listen(id: number, listener: EventListener): void {
	listeners.set(id, listener);
}

export function unlisten(id: number): void {
	listeners.delete(id);
}

/** Called by the engine with one event from the board. */
export function dispatch(event: { id: number }, data: ArrayBuffer | undefined): void {
	listeners.get(event.id)?.(event, data);
}
