// Stand-in for Moddable's SecureSocket, so the device's https path compiles and runs to the board: the
// simulated board has no TLS and refuses a secure request ("tls is not simulated"), ending in a retry.
const SecureSocket = {};
export default SecureSocket;
