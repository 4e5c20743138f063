// expect: TS2345 utterance_ended
import { Player } from 'audioplay';
new Player().on('utterance_ended', () => {});
