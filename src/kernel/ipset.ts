// ipset(8): save, restore, destroy. Runs in the caller's netns.
import { checkCommand } from './command.js';

export function saveIpsets(): string {
  return checkCommand('ipset', ['save']);
}

export function restoreIpsets(text: string): void {
  if (text !== '') checkCommand('ipset', ['restore'], text);
}

/** Set names (`ipset list -n`). */
export function ipsetNames(): string[] {
  return checkCommand('ipset', ['list', '-n']).split('\n').filter((n) => n !== '');
}

export function destroyIpset(name: string): void {
  checkCommand('ipset', ['destroy', name]);
}
