// Moddable's SecureSocket, as the device names it: the Request and Client emulations see it as their
// `Socket` and let the board's sockets speak TLS (Node's tls) with the `secure` dictionary's options.
const SecureSocket = {};
export default SecureSocket;
