// Placeholder for Moddable's SecureSocket: the simulated board's sockets carry TLS requests as plain TCP
// to a local server (the request still says secure, so the board can refuse https when asked to).
const SecureSocket = {};
export default SecureSocket;
