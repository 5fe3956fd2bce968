/* yamlin.c - see yamlin.h. */
#include "yamlin.h"

#include <errno.h>
#include <string.h>

int yin_open(yin *y, const char *path, err *e)
{
    memset(y, 0, sizeof *y);
    y->path = path;
    y->e = e;
    if (!(y->fp = fopen(path, "rb")))
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    if (!yaml_parser_initialize(&y->parser)) {
        fclose(y->fp);
        y->fp = NULL;
        return err_setk(e, ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    }
    yaml_parser_set_input_file(&y->parser, y->fp);
    return 0;
}

void yin_close(yin *y)
{
    if (!y->fp)
        return;
    yaml_parser_delete(&y->parser);
    fclose(y->fp);
    y->fp = NULL;
}

unsigned yin_line(const yaml_event_t *ev)
{
    return (unsigned)ev->start_mark.line + 1;
}

int yin_next(yin *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev))
        return 0;
    const char *problem = y->parser.problem ? y->parser.problem : "unknown problem";
    const char *ctx = y->parser.context;
    return err_set(y->e, "%s:%u: YAML syntax error: %s%s%s", y->path,
                   (unsigned)y->parser.problem_mark.line + 1, problem, ctx ? " " : "",
                   ctx ? ctx : "");
}

int yin_next_in(yin *y, yaml_event_t *ev, yaml_event_type_t end)
{
    if (yin_next(y, ev))
        return -1;
    if (ev->type != end)
        return 1;
    yaml_event_delete(ev);
    return 0;
}

const char *yin_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SEQUENCE_START_EVENT:
        return "a sequence";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "a scalar";
    }
}

int yin_document(yin *y, int (*mapping)(void *ctx), void *ctx, unsigned *maps)
{
    unsigned docs = 0;
    *maps = 0;
    for (;;) {
        yaml_event_t ev;
        if (yin_next(y, &ev))
            return -1;
        yaml_event_type_t t = ev.type;
        unsigned line = yin_line(&ev);
        int empty_scalar =
            t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 && ev.data.scalar.plain_implicit;
        yaml_event_delete(&ev);
        switch (t) {
        case YAML_STREAM_END_EVENT:
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++)
                return err_set(y->e, "%s:%u: expected one YAML document, found another", y->path,
                               line);
            break;
        case YAML_MAPPING_START_EVENT:
            ++*maps;
            if (mapping(ctx))
                return -1;
            break;
        case YAML_SCALAR_EVENT:
            if (empty_scalar) /* `---` with nothing after it */
                break;
            /* fall through */
        case YAML_SEQUENCE_START_EVENT:
        case YAML_ALIAS_EVENT:
            return err_set(y->e, "%s:%u: expected a mapping of keys at the top level, got %s",
                           y->path, line, yin_kind(t));
        default:
            break;
        }
    }
}
