/**
 * The docs are executable and checkable: every fenced block opened with "```sh runnable" in README.md and docs/*.md
 * runs (bash, `set -euo pipefail`, from the repository root) and must exit 0; every relative link and anchor, and every
 * repository path named in backticks, exists; the README stays within its budget.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFreshDist, ROOT } from './support/dist.js';

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const text = (doc: string) => readFileSync(join(ROOT, doc), 'utf8');

interface Block {
  readonly doc: string;
  readonly line: number;
  readonly info: string;
  readonly body: string;
}

function fencedBlocks(doc: string): Block[] {
  const blocks: Block[] = [];
  const lines = text(doc).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    blocks.push({ doc, line: start + 1, info: open[1]!.trim(), body: body.join('\n') });
  }
  return blocks;
}

/** The prose of a document: fenced blocks removed. */
function prose(doc: string): string {
  return text(doc).replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(doc: string): Set<string> {
  const slugs = new Set<string>();
  for (const [, heading] of prose(doc).matchAll(/^#{1,6} (.+)$/gm)) {
    slugs.add(heading!.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'));
  }
  return slugs;
}

const runnable = DOCS.flatMap(fencedBlocks).filter((b) => b.info === 'sh runnable');

/** Runs a block in its own process group, which is killed afterwards (a block may start a server in the background). */
function runBlock(block: Block): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${block.body}`], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(kill, 60_000);
    child.on('error', reject);
    // 'exit', not 'close': a leftover background process would hold the pipes open.
    child.on('exit', (code) => {
      clearTimeout(timer);
      kill();
      resolve({ code, output });
    });
  });
}

beforeAll(() => ensureFreshDist(), 120_000);

describe('docs', () => {
  it('README.md fits its budget (at most 250 lines) and links every document in docs/', () => {
    expect(text('README.md').split('\n').length).toBeLessThanOrEqual(250);
    for (const doc of DOCS.filter((d) => d !== 'README.md')) expect(text('README.md')).toContain(`](${doc})`);
  });

  it('there are runnable blocks in the README (the tour) and in docs/', () => {
    expect(runnable.filter((b) => b.doc === 'README.md').length).toBeGreaterThanOrEqual(4);
    expect(runnable.filter((b) => b.doc !== 'README.md').length).toBeGreaterThanOrEqual(1);
  });

  for (const block of runnable) {
    it(`${block.doc}:${block.line} runs`, { timeout: 90_000 }, async () => {
      const { code, output } = await runBlock(block);
      expect(code, output).toBe(0);
    });
  }

  it('the sh blocks that are not run need what a test has not got: a cluster, a container engine, or the suite itself', () => {
    // A cluster (kubectl, serve against a kubeconfig, the test control plane), a container engine, or the suites
    // themselves (npm test, test:e2e, test:host and the build they start with).
    const needsOutside =
      /^(kubectl (apply|delete|patch|scale|rollout)\b|docker (build|push)\b|npm (ci|test)\b|npm run (build|test:e2e|test:host)\b|scripts\/controlplane\.sh (build|start)\b|(podvisor|node dist\/cli\.js) serve .*--kubeconfig)/;
    const unrunnable = DOCS.flatMap(fencedBlocks)
      .filter((b) => b.info === 'sh')
      .flatMap((b) => b.body.replace(/\\\n/g, ' ').split('\n').map((line) => ({ where: `${b.doc}:${b.line}`, line: line.trim() })))
      .filter(({ line }) => line !== '' && !line.startsWith('#'))
      .filter(({ line }) => !line.split('&&').every((part) => needsOutside.test(part.trim())));
    expect(unrunnable).toEqual([]);
  });

  it('every relative link points at a file that exists, and every anchor at a heading', () => {
    const broken: string[] = [];
    for (const doc of DOCS) {
      for (const [, target] of prose(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, anchor] = target!.split('#');
        const file = path === '' ? doc : relative(ROOT, join(ROOT, dirname(doc), path!));
        if (!existsSync(join(ROOT, file))) broken.push(`${doc}: ${target} (no file ${file})`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${doc}: ${target} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every repository path a document names in backticks exists', () => {
    const missing: string[] = [];
    for (const doc of DOCS) {
      for (const [, path] of text(doc).matchAll(/`((?:src|test|deploy|examples|scripts|docs|bench)\/[^`\s]*)`/g)) {
        if (/[<>*…]/.test(path!)) continue;
        if (!existsSync(join(ROOT, path!))) missing.push(`${doc}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('describes the product as it is: no commit references, no before/after history', () => {
    for (const doc of DOCS) {
      const body = prose(doc);
      expect(body, doc).not.toMatch(/\bcommit [0-9a-f]{7,40}\b/);
      expect(body, doc).not.toMatch(/\b(we used to|used to be|before the .* work|as before)\b/i);
    }
  });
});
