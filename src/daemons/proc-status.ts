/** Reading a process's credentials and session from /proc (Linux), for checks and tests. */
import { readFileSync } from 'node:fs';

export interface ProcIds {
  /** real, effective, saved, filesystem */
  uid: [number, number, number, number];
  gid: [number, number, number, number];
  groups: number[];
}

/** Uid/Gid/Groups lines of /proc/<pid>/status. */
export function readProcIds(pid: number): ProcIds {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
    return m && m[1] !== undefined ? m[1].trim().split(/\s+/).filter(Boolean).map(Number) : [];
  };
  const four = (xs: number[]): [number, number, number, number] => [xs[0] ?? -1, xs[1] ?? -1, xs[2] ?? -1, xs[3] ?? -1];
  return { uid: four(field('Uid')), gid: four(field('Gid')), groups: field('Groups') };
}

export interface ProcSession {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  /** 0 when the process has no controlling terminal. */
  ttyNr: number;
}

/** Fields 4-7 of /proc/<pid>/stat (the command name may contain spaces and parentheses). */
export function readProcSession(pid: number): ProcSession {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]), ttyNr: Number(rest[4]) };
}
