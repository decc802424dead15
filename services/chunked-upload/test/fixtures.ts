/** Names a hostile or careless client might send. */
export const HOSTILE_NAMES = [
  '../../etc/passwd',
  '..\\..\\windows\\system32\\config',
  '/etc/passwd',
  'C:\\Windows\\win.ini',
  'c:/boot.ini',
  '\\\\server\\share\\x',
  '//server/share/x',
  'a/../../b',
  'a/./../../b',
  '..',
  '.',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..%2f..%2fetc',
  '\uff0e\uff0e\uff0fetc\uff0fpasswd', // full-width dots and slash
  '..\u2215..\u2215etc', // division slash
  `${'a'.repeat(5000)}.bin`,
  `${'\u00e9'.repeat(300)}.txt`,
  'CON',
  'nul.txt',
  'COM1',
  'file\u0000.txt',
  'bell\u0007.txt',
  'trailing.',
  'space ',
  'a'.repeat(300),
];
