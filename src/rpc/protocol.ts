/**
 * Frame types of the Switchboard RPC protocol. Every frame is one type byte,
 * then fields (varints, strings and values of the codec):
 *
 *   HELLO     magic "SBRP", u8 major, u8 minor, value {token?}
 *   WELCOME   magic "SBRP", u8 major, u8 minor
 *   REFUSE    value error (EVERSION, EACCES), then the server closes
 *   CALL      varint call id, varint target (0 = the exposed object), string
 *             method, u8 flags (1 deadline, 2 metadata), [varint ms],
 *             [value metadata], value args
 *   NOTIFY    like CALL without the call id: one-way, never answered
 *   RESULT    varint call id, value            ERROR  varint call id, value
 *   CANCEL    varint call id
 *   S_NEXT    varint stream id, value          S_END  varint stream id
 *   S_ERROR   varint stream id, value          S_CREDIT varint stream id, varint n
 *   S_CANCEL  varint stream id
 *   RELEASE   varint reference id, varint count (references dropped by the holder)
 *
 * Ids are chosen by the side that creates the thing (call, stream, reference);
 * the frame type says whose id space a frame refers to.
 */
export const F = {
  HELLO: 1,
  WELCOME: 2,
  REFUSE: 3,
  CALL: 4,
  NOTIFY: 5,
  RESULT: 6,
  ERROR: 7,
  CANCEL: 8,
  S_NEXT: 9,
  S_END: 10,
  S_ERROR: 11,
  S_CREDIT: 12,
  S_CANCEL: 13,
  RELEASE: 14,
} as const;

export const MAGIC = [0x53, 0x42, 0x52, 0x50] as const; // "SBRP"
export const PROTOCOL_MAJOR = 1;
export const PROTOCOL_MINOR = 0;

/** Items a stream sender may have in flight before the receiver grants more. */
export const STREAM_WINDOW = 32;
