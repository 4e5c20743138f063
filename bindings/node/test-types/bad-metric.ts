// expect: TS2551 frames_playd
import { Player } from 'audioplay';
const played: number = new Player().metrics().frames_playd;
void played;
