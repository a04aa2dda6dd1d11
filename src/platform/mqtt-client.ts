// MqttConnector over Moddable's "mqtt" Client: QoS 0, no acknowledgements, no reconnect (the agent does both).
// mqtts goes through SecureSocket with the broker's trust anchor and the device's client certificate.

import Client from "mqtt";
import type { MqttConnection, MqttConnectOptions, MqttConnector, MqttHandler } from "./ports";
import { secureOptions, tlsFailureReason } from "./tls-credentials";
import { observedSecureSocket } from "./tls-socket";
import { tlsReasons } from "../lib/tls-failure";

export class ModdableMqttConnector implements MqttConnector {
	connect(options: MqttConnectOptions, handler: MqttHandler): MqttConnection {
		const { host, port, id, keepAliveMs, tls } = options;
		let refused = false;
		let client: Client;
		try {
			client = new Client({ host, port, id, timeout: keepAliveMs, ...(tls ? { Socket: observedSecureSocket(() => refused = true), secure: secureOptions(host, tls) } : {}) });
		}
		catch (error) {
			if (!tls) throw error;
			throw new Error(tlsFailureReason(error, "connection failed"));
		}
		client.onReady = () => handler.ready();
		client.onMessage = (topic, payload) => handler.message(topic, payload);
		client.onClose = (reason?: unknown) => handler.closed(!tls ? undefined : refused ? tlsReasons.handshakeFailed : tlsFailureReason(reason, "") || undefined);
		return client;
	}
}
