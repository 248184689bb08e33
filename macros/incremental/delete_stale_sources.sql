{#-
    The pre-hook of an incremental staging model (and of the models that follow its
    sources): on an incremental run, delete the rows of every source that is not one of
    `current` (dicts {'file', 'sheet', 'load_id'}, the sources as they stand now), that is
    the old rows of a reloaded sheet or table (its load id changed) and the rows of a source
    no longer loaded; every row, when a delivery raw table was changed in place since the
    model was built (macro raw_edited_since). The model then inserts the rows of the
    current sources it lacks.
-#}
{% macro delete_stale_sources(current) -%}
    {%- if is_incremental() and raw_edited_since(model_state(this)) -%}
        delete from {{ this }}
    {%- elif is_incremental() -%}
        delete from {{ this }}
        where (source_file, source_sheet, load_id) not in (
            {{ sources_values(current | reject('none') | list) }}
        )
    {%- endif -%}
{%- endmacro %}
