/**
 * Shared memory (seed 12.2.4 and exercise 179): named regions and mapped
 * files as SharedArrayBuffers, cross-process futex wait/wake, semaphores,
 * robust mutexes and condition variables living in shared memory, named
 * POSIX semaphores, and lock-free ring channels (usable as a Channel).
 * Native part: native/shm.cc (addon sb_shm). Usage notes: README.md here.
 */
export { createRegion, openRegion, mapFile, unlinkRegionName, Region, MAX_REGION_SIZE } from './region.js';
export type { CreateRegionOptions, OpenRegionOptions, MapFileOptions, RegionSource } from './region.js';
export type { HeaderInfo as RegionInfo } from './region-header.js';
export { REGION_HEADER_SIZE } from './region-header.js';
export { futexWait, futexWake, futexWaitAsync } from './futex.js';
export type { WaitResult, AsyncWaitOptions } from './futex.js';
export { Mutex, OwnerDeadError } from './mutex.js';
export type { LockOptions, LockAsyncOptions } from './mutex.js';
export { Semaphore } from './semaphore.js';
export { Condition } from './condition.js';
export { NamedSemaphore } from './named-semaphore.js';
export type { NamedSemaphoreOptions } from './named-semaphore.js';
export { initRing, ringBytes, RingProducer, RingConsumer, RingCorruptError } from './ring.js';
export type { WaitMode, RingCreateOptions, RingEndOptions, RingConsumerOptions, WaitOptions } from './ring.js';
export { RING_HEADER_SIZE } from './ring-layout.js';
export { posixName, NAME_PREFIX } from './names.js';
export { threadId, isAlive } from './native.js';
export { listRegions, removeRegions } from './registry.js';
export type { RegionEntry } from './registry.js';
export { listenShm, connectShm, ringChannel, createRingPair, RingChannel } from './ring-channel.js';
export type { RingPairOptions, ShmListener } from './ring-channel.js';
