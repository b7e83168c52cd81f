// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core,
// with the flags this sandbox needs (no background networking: the network outside loopback is
// closed). A test file is skipped when the package is missing.
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

// A skip reason for node:test's describe(), or false when Chromium is there.
export const skipWithoutChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package chromium): browser tests skipped`;

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
