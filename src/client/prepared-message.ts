import { bdatFrameMessage, DEFAULT_BDAT_CHUNK_SIZE } from "../core/bdat-chunker.ts";
import type { TransactionBody } from "../core/client-session.ts";
import { dotStuffMessage } from "../core/dot-stuffer.ts";
import type { MessageTraits } from "./transaction-plan.ts";

function hasEightBit(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) > 0x7f) return true;
  return false;
}

/**
 * A message ready to send, any number of times and over any number of connections: the
 * dot-stuffed DATA form and the BDAT frames are computed once, on first use, and shared. This is
 * what `send --repeat` and the queue should hand to SmtpClient.send().
 */
export class PreparedMessage {
  readonly traits: MessageTraits;
  private dataForm: TransactionBody | undefined;
  private bdatForm: TransactionBody | undefined;
  private framesChunkSize = 0;
  private normalizedSize: number | undefined;

  /**
   * @param bytes the whole message, line ends CRLF or not (they are normalised unless binary).
   * @param traits what the caller knows; `eightBit` is detected when not given.
   */
  constructor(
    readonly bytes: Uint8Array,
    traits: Omit<MessageTraits, "size"> = {},
  ) {
    this.traits = { ...traits, eightBit: traits.eightBit ?? (traits.binary !== true && hasEightBit(bytes)) };
  }

  /** RFC 1870 size: octets with CRLF line ends (binary: as given). */
  get size(): number {
    if (this.traits.binary === true) return this.bytes.length;
    if (this.normalizedSize === undefined) this.dataBody();
    return this.normalizedSize as number;
  }

  dataBody(): TransactionBody {
    if (this.traits.binary === true) throw new Error("a binary message cannot be sent with DATA");
    if (this.dataForm === undefined) {
      const { bytes, size } = dotStuffMessage(this.bytes);
      this.dataForm = { kind: "data", bytes };
      this.normalizedSize = size;
    }
    return this.dataForm;
  }

  bdatBody(chunkSize: number = DEFAULT_BDAT_CHUNK_SIZE): TransactionBody {
    if (this.bdatForm === undefined || this.framesChunkSize !== chunkSize) {
      const { frames, size } = bdatFrameMessage(this.bytes, {
        chunkSize,
        normalizeLineEnds: this.traits.binary !== true,
      });
      this.bdatForm = { kind: "bdat", frames };
      this.framesChunkSize = chunkSize;
      this.normalizedSize = size;
    }
    return this.bdatForm;
  }
}
