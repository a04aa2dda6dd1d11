// MqttConnector over Moddable's "mqtt" Client: QoS 0, no acknowledgements, no reconnect (the agent does both).

import Client from "mqtt";
import type { MqttConnection, MqttConnector, MqttHandler } from "./ports";

export class ModdableMqttConnector implements MqttConnector {
	connect(options: { host: string; port: number; id: string; keepAliveMs: number }, handler: MqttHandler): MqttConnection {
		const client = new Client({ host: options.host, port: options.port, id: options.id, timeout: options.keepAliveMs });
		client.onReady = () => handler.ready();
		client.onMessage = (topic, payload) => handler.message(topic, payload);
		client.onClose = () => handler.closed();
		return client;
	}
}
