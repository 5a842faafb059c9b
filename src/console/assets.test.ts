import { describe, expect, test } from 'vitest';
import { escapeHtml, fill, loadAssets, pageFor } from './assets.js';

describe('pageFor', () => {
  test.each([
    ['/console/', 'overview'],
    ['/console/certificates', 'certificates'],
    ['/console/certificates/0A1b2c', 'certificate'],
    ['/console/devices', 'devices'],
    ['/console/audit', 'audit'],
    ['/console/acme', 'acme'],
    ['/console/cas/issuing-1', 'ca'],
  ])('%s is the %s page', (path, page) => {
    expect(pageFor(path)).toBe(page);
  });

  test.each(['/console', '/console/certificates/', '/console/certificates/xyz', `/console/certificates/${'a'.repeat(41)}`, '/console/devices/d1', '/console/audit/1', '/console/login', '/console/static/js/main.js', '/console/cas', '/console/cas/', '/console/cas/Issuing_1', '/console/cas/-x'])('%s is no page', (path) => {
    expect(pageFor(path)).toBeUndefined();
  });
});

describe('templates', () => {
  test('fill escapes every value and refuses a slot without one', () => {
    expect(fill('<p title="{{message}}">{{message}}</p>', { message: `<img src=x onerror="alert('1')">&` })).toBe(
      '<p title="&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;">&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;</p>',
    );
    expect(() => fill('{{missing}}', {})).toThrow(/no value/);
    expect(escapeHtml('a&b')).toBe('a&amp;b');
  });
});

describe('loadAssets', () => {
  test('reads the shell, the login page, the stylesheet and every module with its type', () => {
    const assets = loadAssets();
    expect(assets.get('shell.html')?.contentType).toBe('text/html; charset=utf-8');
    expect(assets.get('login.html')?.contentType).toBe('text/html; charset=utf-8');
    expect(assets.get('console.css')?.contentType).toBe('text/css; charset=utf-8');
    for (const page of ['overview', 'certificates', 'certificate', 'devices', 'audit', 'acme', 'ca']) {
      expect(assets.get(`js/pages/${page}.js`)?.contentType, page).toBe('text/javascript; charset=utf-8');
    }
  });

  test('no file has inline script, inline style or an outside URL (the CSP allows none)', () => {
    for (const [name, asset] of loadAssets()) {
      const text = asset.body.toString('utf8');
      if (name.endsWith('.html')) {
        expect(text, name).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
      }
      // Only the SVG namespace URI names another host; nothing is loaded from one.
      expect(text.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, ''), name).not.toMatch(/https?:\/\//);
      if (name.endsWith('.js')) expect(text, name).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });
});
