// expect: TS2322 s24
import { Player } from 'audioplay';
new Player({ format: 's24' });
