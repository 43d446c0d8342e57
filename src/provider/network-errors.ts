/**
 * Node's error codes for a request that failed without an answer (the connection or name lookup
 * failed, or timed out): worth a retry in every cloud, since nothing says the request was refused.
 */
export const networkErrorCodes: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);
