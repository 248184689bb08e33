{#- The relation of a model or seed of this project by its name, when it exists in the
    database (none otherwise: a hook must not fail on a database that is not built). -#}
{% macro validation_relation(name) -%}
    {%- for node in graph.nodes.values()
        if node.name == name and node.resource_type in ['model', 'seed'] -%}
        {{ return(adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias)) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}
