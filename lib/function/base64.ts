// Strict base64: Node's decoder skips characters it does not know, which would turn a corrupt
// spec.function into silently different bytes. Line breaks and spaces (as `base64` wraps its
// output) are allowed; anything else that is not canonical base64 is refused.

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The decoded bytes, or undefined when `text` is not canonical standard base64. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const compact = text.replace(/[\r\n\t ]+/g, '');
  if (!BASE64.test(compact)) return undefined;
  const bytes = Buffer.from(compact, 'base64');
  // Non-zero bits in the padding would decode to the same bytes as another text.
  if (bytes.toString('base64') !== compact) return undefined;
  return bytes;
}
